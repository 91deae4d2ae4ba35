package org.plaid.bench.core;

import java.util.Arrays;

/** The timing protocol of device_bench/runner.py {@code timed_runs}. */
public final class TimedRuns {
    private TimedRuns() {}

    /**
     * Invokes {@code warmup_runs} times untimed, then times one invocation after another until
     * both {@code min_runs} and {@code min_seconds} are met, or {@code max_runs} or
     * {@code max_seconds} is reached. The seconds count from the first timed run's start. A run's
     * time is the clock's, or the model's own when it is {@link SelfTimed}.
     *
     * @return milliseconds per timed run (at least one)
     */
    public static double[] measure(Invocable model, Settings s, Clock clock) throws Exception {
        for (long i = 0; i < s.warmupRuns; i++) {
            model.invoke();
        }
        double[] times = new double[(int) Math.max(1, Math.min(s.minRuns, 1 << 16))];
        int n = 0;
        long start = clock.nanoTime();
        while (true) {
            long t0 = clock.nanoTime();
            model.invoke();
            long t1 = clock.nanoTime();
            if (n == times.length) {
                times = Arrays.copyOf(times, times.length * 2);
            }
            long own = model instanceof SelfTimed ? ((SelfTimed) model).lastInvokeNanos() : -1L;
            times[n++] = (own >= 0 ? own : t1 - t0) / 1e6;
            double elapsed = (t1 - start) / 1e9;
            boolean enough = n >= s.minRuns && elapsed >= s.minSeconds;
            if (enough || n >= s.maxRuns || elapsed >= s.maxSeconds) {
                return Arrays.copyOf(times, n);
            }
        }
    }
}
