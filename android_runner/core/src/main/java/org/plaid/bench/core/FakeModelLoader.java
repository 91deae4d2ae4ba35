package org.plaid.bench.core;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A deterministic stand-in for the TFLite interpreter, for tests and {@code Cli fake-run}. A
 * "model file" is a small JSON object and each invocation advances a {@link ManualClock}:
 *
 * <pre>
 * {"cost_ms": [1.5, 2.0]}            each invocation costs the next value, cycling (warm-up included)
 * {"cost_ms": [1.0], "fail_after": 3} the 4th invocation throws
 * {"load_error": "bad op"}           loading throws IllegalArgumentException("bad op")
 * </pre>
 */
public final class FakeModelLoader implements ModelLoader {
    private final ManualClock clock;
    private final List<String> closed = new ArrayList<String>();

    public FakeModelLoader(ManualClock clock) {
        this.clock = clock;
    }

    /** Names of the model files whose model was closed, in order. */
    public synchronized List<String> closed() {
        return new ArrayList<String>(closed);
    }

    @Override
    public Model load(final File file, Settings settings) throws Exception {
        Object doc = PyJson.parse(Plan.readUtf8(file));
        if (!(doc instanceof Map)) {
            throw new IllegalArgumentException(file.getName() + " is not a fake model");
        }
        Map<?, ?> spec = (Map<?, ?>) doc;
        if (spec.get("load_error") instanceof String) {
            throw new IllegalArgumentException((String) spec.get("load_error"));
        }
        Object costs = spec.get("cost_ms");
        if (!(costs instanceof List) || ((List<?>) costs).isEmpty()) {
            throw new IllegalArgumentException(file.getName() + " needs a non-empty 'cost_ms' list");
        }
        final double[] cost = new double[((List<?>) costs).size()];
        for (int i = 0; i < cost.length; i++) {
            cost[i] = ((Number) ((List<?>) costs).get(i)).doubleValue();
        }
        final long failAfter = spec.get("fail_after") instanceof Number
                ? ((Number) spec.get("fail_after")).longValue() : Long.MAX_VALUE;
        return new Model() {
            private long calls;

            @Override
            public void invoke() {
                if (calls >= failAfter) {
                    throw new IllegalStateException("invocation " + (calls + 1) + " failed");
                }
                clock.advanceMillis(cost[(int) (calls % cost.length)]);
                calls++;
            }

            @Override
            public void close() {
                synchronized (FakeModelLoader.this) {
                    closed.add(file.getName());
                }
            }
        };
    }
}
