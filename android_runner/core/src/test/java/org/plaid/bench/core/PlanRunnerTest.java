package org.plaid.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class PlanRunnerTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private File dir;
    private File out;
    private ManualClock clock;
    private FakeModelLoader loader;
    private final List<String> logged = new ArrayList<String>();

    private final RunLog log = new RunLog() {
        @Override
        public void info(String message) {
            logged.add("I " + message);
        }

        @Override
        public void warn(String message) {
            logged.add("W " + message);
        }

        @Override
        public void error(String message, Throwable error) {
            logged.add("E " + message);
        }
    };

    @Before
    public void setUp() throws Exception {
        dir = tmp.newFolder("plaid");
        new File(dir, "units").mkdir();
        out = new File(dir, "results.json");
        clock = new ManualClock();
        loader = new FakeModelLoader(clock);
    }

    private void write(String name, String text) throws Exception {
        Files.write(new File(dir, name).toPath(), text.getBytes(StandardCharsets.UTF_8));
    }

    private File plan(String settings, String... keyPaths) throws Exception {
        StringBuilder models = new StringBuilder();
        for (int i = 0; i < keyPaths.length; i += 2) {
            models.append(i == 0 ? "" : ", ").append("{\"key\": \"").append(keyPaths[i]).append("\", \"path\": \"")
                    .append(keyPaths[i + 1]).append("\"}");
        }
        write("plan.json", "{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", \"settings\": " + settings
                + ", \"models\": [" + models + "]}");
        return new File(dir, "plan.json");
    }

    private int run(File planFile) {
        return new PlanRunner(loader, clock, log).runFiles(planFile, out, Cli.FAKE_ENV);
    }

    private Map<?, ?> results() throws Exception {
        return (Map<?, ?>) PyJson.parse(Plan.readUtf8(out));
    }

    private List<Map<?, ?>> events() throws Exception {
        List<Map<?, ?>> events = new ArrayList<Map<?, ?>>();
        for (String line : Files.readAllLines(new File(out.getPath() + ".events.jsonl").toPath(), StandardCharsets.UTF_8)) {
            events.add((Map<?, ?>) PyJson.parse(line));
        }
        return events;
    }

    private static final String QUICK = "{\"warmup_runs\": 2, \"min_runs\": 5, \"min_seconds\": 0.01, \"max_seconds\": 1}";

    @Test
    public void writesEventsAndTheFinalDocument() throws Exception {
        write("units/a.json", "{\"cost_ms\": [2.0]}");
        write("units/b.json", "{\"cost_ms\": [1.0, 3.0]}");
        int rc = run(plan(QUICK, "a", "units/a.json", "b", "units/b.json"));
        assertEquals(0, rc);
        Map<?, ?> doc = results();
        assertEquals("plaid.results/1", doc.get("schema"));
        assertEquals("fake", ((Map<?, ?>) doc.get("runtime")).get("version"));
        assertTrue(doc.get("device") instanceof Map);
        assertEquals(0.01, ((Map<?, ?>) doc.get("settings")).get("min_seconds"));
        assertFalse(doc.containsKey("warnings"));
        List<?> rows = (List<?>) doc.get("results");
        assertEquals(2, rows.size());
        Map<?, ?> a = (Map<?, ?>) rows.get(0);
        assertEquals(Arrays.asList("key", "status", "median_ms", "p90_ms", "mean_ms", "std_ms", "cv", "min_ms", "runs"),
                new ArrayList<Object>(a.keySet()));
        assertEquals("a", a.get("key"));
        assertEquals("ok", a.get("status"));
        assertEquals(2.0, a.get("median_ms"));
        assertEquals(5L, a.get("runs")); // 5 runs of 2 ms reach 0.01 s
        Map<?, ?> b = (Map<?, ?>) rows.get(1);
        // warm-up takes 1, 3; timed runs alternate 1, 3, 1, 3, 1, 3 ... until 10 ms and 5 runs: 1 3 1 3 1 3 (12 ms)
        assertEquals(6L, b.get("runs"));
        assertEquals(1.0, b.get("min_ms"));
        assertEquals(2.0, b.get("mean_ms"));
        // events: one line per model, the row with "event": "result" in front
        List<Map<?, ?>> events = events();
        assertEquals(2, events.size());
        for (int i = 0; i < 2; i++) {
            Map<String, Object> expected = new LinkedHashMap<String, Object>();
            expected.put("event", "result");
            expected.putAll(castMap(rows.get(i)));
            assertEquals(expected, events.get(i));
            assertEquals("event", events.get(i).keySet().iterator().next());
        }
        assertEquals(Arrays.asList("a.json", "b.json"), loader.closed());
        assertTrue(logged.get(0).startsWith("I {\"event\": \"start\""));
        assertTrue(logged.get(logged.size() - 1).startsWith("I done: 2 models"));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> castMap(Object o) {
        return (Map<String, Object>) o;
    }

    @Test
    public void aFailingModelGivesAnErrorRowAndTheOthersStillRun() throws Exception {
        write("units/ok1.json", "{\"cost_ms\": [1.0]}");
        write("units/bad.json", "{\"load_error\": \"Didn't find op for builtin opcode 'CONV_3D'\\n  version 1\"}");
        write("units/flaky.json", "{\"cost_ms\": [1.0], \"fail_after\": 4}");
        write("units/garbage.json", "not json");
        write("units/ok2.json", "{\"cost_ms\": [4.0]}");
        int rc = run(plan(QUICK, "ok1", "units/ok1.json", "bad", "units/bad.json", "missing", "units/missing.tflite",
                "flaky", "units/flaky.json", "garbage", "units/garbage.json", "ok2", "units/ok2.json"));
        assertEquals(1, rc);
        List<?> rows = (List<?>) results().get("results");
        assertEquals(6, rows.size());
        String[] status = new String[6];
        for (int i = 0; i < 6; i++) {
            status[i] = (String) ((Map<?, ?>) rows.get(i)).get("status");
        }
        assertEquals(Arrays.asList("ok", "error", "error", "error", "error", "ok"), Arrays.asList(status));
        Map<?, ?> bad = (Map<?, ?>) rows.get(1);
        assertEquals(Arrays.asList("key", "status", "error"), new ArrayList<Object>(bad.keySet()));
        // one line: type, message, whitespace collapsed
        assertEquals("IllegalArgumentException: Didn't find op for builtin opcode 'CONV_3D' version 1", bad.get("error"));
        String missing = (String) ((Map<?, ?>) rows.get(2)).get("error");
        assertTrue(missing, missing.startsWith("FileNotFoundException: model file not found: "));
        assertTrue(missing, missing.endsWith("units/missing.tflite"));
        assertEquals("IllegalStateException: invocation 5 failed", ((Map<?, ?>) rows.get(3)).get("error"));
        assertTrue(((String) ((Map<?, ?>) rows.get(4)).get("error")).startsWith("JSONException: expecting a value"));
        assertEquals(4.0, ((Map<?, ?>) rows.get(5)).get("median_ms"));
        assertEquals(6, events().size());
        // the model that failed mid-run was closed too
        assertEquals(Arrays.asList("ok1.json", "flaky.json", "ok2.json"), loader.closed());
    }

    @Test
    public void longErrorsAreCutTo500Characters() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 300; i++) {
            sb.append("\u00e9\ud83d\ude00 ");
        }
        String line = PlanRunner.oneLine(new RuntimeException(sb.toString()));
        assertEquals(500, line.codePointCount(0, line.length()));
        assertFalse(Character.isHighSurrogate(line.charAt(line.length() - 1)));
        assertEquals("NullPointerException:", PlanRunner.oneLine(new NullPointerException()));
    }

    @Test
    public void anInvalidPlanIsAWholeRunError() throws Exception {
        File p = plan("{\"threads\": 0}", "a", "units/a.json");
        assertEquals(2, run(p));
        Map<?, ?> doc = results();
        assertEquals("plaid.results/1", doc.get("schema"));
        assertEquals(p + ": threads and min_runs must be >= 1, warmup_runs >= 0", doc.get("error"));
        assertFalse(doc.containsKey("results"));
        assertEquals(0, events().size());
    }

    @Test
    public void malformedAndMissingPlans() throws Exception {
        write("plan.json", "{\"schema\": \"plaid.plan/1\",\n \"runtime\": }");
        assertEquals(2, run(new File(dir, "plan.json")));
        String error = (String) results().get("error");
        assertTrue(error, error.endsWith("plan.json: expecting a value, found '}' at line 2 column 13 (char 39)"));
        assertEquals(2, run(new File(dir, "nothing.json")));
        assertTrue(((String) results().get("error")).endsWith("nothing.json: FileNotFoundException: plan file not found"));
    }

    @Test
    public void aFailureWhileWritingStopsTheRunAndKeepsWhatFinished() throws Exception {
        write("units/a.json", "{\"cost_ms\": [1.0]}");
        write("units/b.json", "{\"cost_ms\": [1.0]}");
        final File events = new File(out.getPath() + ".events.jsonl");
        // While the second model loads, the events file turns into a folder: appending fails.
        ModelLoader sabotage = new ModelLoader() {
            @Override
            public Model load(File file, Settings settings) throws Exception {
                if (file.getName().equals("b.json")) {
                    assertTrue(events.delete());
                    assertTrue(events.mkdir());
                }
                return loader.load(file, settings);
            }
        };
        int rc = new PlanRunner(sabotage, clock, log).runFiles(plan(QUICK, "a", "units/a.json", "b", "units/b.json"), out,
                Cli.FAKE_ENV);
        assertEquals(2, rc);
        Map<?, ?> doc = results();
        assertTrue((String) doc.get("error"), ((String) doc.get("error")).startsWith("FileNotFoundException: "));
        assertEquals(2, ((List<?>) doc.get("results")).size());
        assertEquals("plaid.results/1", doc.get("schema"));
        assertTrue(doc.get("device") instanceof Map);
    }

    @Test
    public void cpusAreReportedAsNotApplied() throws Exception {
        write("units/a.json", "{\"cost_ms\": [1.0]}");
        assertEquals(0, run(plan("{\"cpus\": [4, 5, 6, 7], \"warmup_runs\": 0, \"min_runs\": 1, \"min_seconds\": 0}",
                "a", "units/a.json")));
        List<?> warnings = (List<?>) results().get("warnings");
        assertEquals(1, warnings.size());
        assertTrue((String) warnings.get(0), ((String) warnings.get(0)).startsWith("settings.cpus [4, 5, 6, 7] not applied"));
        assertTrue(logged.contains("W " + warnings.get(0)));
        assertEquals(Arrays.asList(4L, 5L, 6L, 7L), ((Map<?, ?>) results().get("settings")).get("cpus"));
    }

    @Test
    public void anEnvironmentThatThrowsIsAWholeRunError() throws Exception {
        write("units/a.json", "{\"cost_ms\": [1.0]}");
        RunEnvironment broken = new RunEnvironment() {
            @Override
            public Map<String, Object> runtime() {
                throw new UnsatisfiedLinkError("dlopen failed: libtensorflowlite_jni.so not found");
            }

            @Override
            public Map<String, Object> device() {
                return new LinkedHashMap<String, Object>();
            }
        };
        int rc = new PlanRunner(loader, clock, log).runFiles(plan(QUICK, "a", "units/a.json"), out, broken);
        assertEquals(2, rc);
        assertEquals("UnsatisfiedLinkError: dlopen failed: libtensorflowlite_jni.so not found", results().get("error"));
    }

    @Test
    public void reportFailureWritesAnErrorDocument() throws Exception {
        PlanRunner.reportFailure(out, "the intent has no 'plan' extra", log);
        Map<?, ?> doc = results();
        assertEquals("the intent has no 'plan' extra", doc.get("error"));
        assertEquals(0, events().size());
        assertTrue(logged.contains("E run failed: the intent has no 'plan' extra"));
    }

    @Test
    public void measureResolvesAbsolutePaths() throws Exception {
        write("units/a.json", "{\"cost_ms\": [3.0]}");
        String abs = new File(dir, "units/a.json").getAbsolutePath();
        Plan p = Plan.read(plan(QUICK, "a", abs));
        Map<String, Object> row = new PlanRunner(loader, clock, log).measure(p.models.get(0), p.settings, new File("/nowhere"));
        assertEquals("ok", row.get("status"));
        assertEquals(3.0, row.get("median_ms"));
        assertNull(row.get("error"));
    }
}
