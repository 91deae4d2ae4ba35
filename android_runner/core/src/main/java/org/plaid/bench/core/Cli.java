package org.plaid.bench.core;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONException;

/**
 * The core on the host JVM, for cross-checks against device_bench (tests/test_android_core.py):
 *
 * <pre>
 * java -cp CLASSES org.plaid.bench.core.Cli validate-plan PLAN     prints the validated plan (defaults filled in)
 * java -cp CLASSES org.plaid.bench.core.Cli fake-run PLAN OUT      runs PLAN with {@link FakeModelLoader} models
 * java -cp CLASSES org.plaid.bench.core.Cli stats &lt; TIMES.json   statistics of a JSON list of milliseconds
 * </pre>
 *
 * Exit codes: 0 fine, 1 some models failed (fake-run), 2 usage or plan errors (one line on stderr).
 */
public final class Cli {
    private static final String USAGE = "usage: Cli validate-plan PLAN | fake-run PLAN OUT | stats < TIMES.json";

    private Cli() {}

    public static void main(String[] args) {
        System.exit(run(args, System.in, System.out, System.err));
    }

    static int run(String[] args, InputStream in, PrintStream out, final PrintStream err) {
        String cmd = args.length > 0 ? args[0] : "";
        if ("validate-plan".equals(cmd) && args.length == 2) {
            try {
                out.println(PyJson.writePretty(Plan.read(new File(args[1])).toJson()));
                return 0;
            } catch (IOException e) {
                err.println("plaid-bench: error: " + args[1] + ": " + PlanRunner.oneLine(e));
            } catch (JSONException | SchemaException e) {
                err.println("plaid-bench: error: " + args[1] + ": " + e.getMessage());
            }
            return 2;
        }
        if ("fake-run".equals(cmd) && args.length == 3) {
            ManualClock clock = new ManualClock();
            RunLog log = new RunLog() {
                @Override
                public void info(String message) {
                    err.println("plaid-bench: " + message);
                }

                @Override
                public void warn(String message) {
                    err.println("plaid-bench: warning: " + message);
                }

                @Override
                public void error(String message, Throwable error) {
                    err.println("plaid-bench: error: " + message);
                }
            };
            return new PlanRunner(new FakeModelLoader(clock), clock, log)
                    .runFiles(new File(args[1]), new File(args[2]), FAKE_ENV);
        }
        if ("stats".equals(cmd) && args.length == 1) {
            try {
                Object doc = PyJson.parse(new String(readAll(in), StandardCharsets.UTF_8));
                if (!(doc instanceof List)) {
                    throw new JSONException("expecting a JSON list of milliseconds");
                }
                List<?> list = (List<?>) doc;
                double[] times = new double[list.size()];
                for (int i = 0; i < times.length; i++) {
                    times[i] = ((Number) list.get(i)).doubleValue();
                }
                out.println(PyJson.write(Stats.of(times).toJson()));
                return 0;
            } catch (IOException | JSONException | ClassCastException | IllegalArgumentException e) {
                err.println("plaid-bench: error: stats: " + PlanRunner.oneLine(e));
                return 2;
            }
        }
        err.println(USAGE);
        return 2;
    }

    private static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        byte[] chunk = new byte[8192];
        int n;
        while ((n = in.read(chunk)) > 0) {
            buf.write(chunk, 0, n);
        }
        return buf.toByteArray();
    }

    static final RunEnvironment FAKE_ENV = new RunEnvironment() {
        @Override
        public Map<String, Object> runtime() {
            Map<String, Object> r = new LinkedHashMap<String, Object>();
            r.put("name", "tflite");
            r.put("version", "fake");
            return r;
        }

        @Override
        public Map<String, Object> device() {
            Map<String, Object> d = new LinkedHashMap<String, Object>();
            d.put("system", "fake");
            d.put("machine", System.getProperty("os.arch"));
            d.put("cpu_count", (long) Runtime.getRuntime().availableProcessors());
            return d;
        }
    };
}
