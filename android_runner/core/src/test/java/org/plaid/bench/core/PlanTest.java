package org.plaid.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** Messages are device_bench/schema.py's, as Python prints them for the same documents. */
public class PlanTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private static final String MODELS = "\"models\": [{\"key\": \"a\", \"path\": \"a.tflite\"}]";

    private static String withSettings(String settings) {
        return "{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", " + MODELS + ", \"settings\": " + settings + "}";
    }

    private static Plan plan(String json) throws Exception {
        return Plan.parse(PyJson.parse(json));
    }

    private static void assertRejected(String json, String message) {
        SchemaException e = assertThrows(SchemaException.class, () -> plan(json));
        assertEquals(message, e.getMessage());
    }

    @Test
    public void defaultsAreDeviceBenchs() throws Exception {
        Plan p = plan("{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", " + MODELS + "}");
        Settings s = p.settings;
        assertEquals(1, s.threads);
        assertEquals(5, s.warmupRuns);
        assertEquals(20, s.minRuns);
        assertEquals(1000, s.maxRuns);
        assertEquals(1.0, s.minSeconds, 0);
        assertEquals(20.0, s.maxSeconds, 0);
        assertEquals("xnnpack", s.delegate);
        assertNull(s.cpus);
        assertNull(s.precision);
        assertEquals(Settings.NAMES, new ArrayList<String>(s.toJson().keySet()));
        assertEquals("{\"threads\": 1, \"warmup_runs\": 5, \"min_runs\": 20, \"max_runs\": 1000, \"min_seconds\": 1.0, "
                + "\"max_seconds\": 20.0, \"delegate\": \"xnnpack\", \"cpus\": null, \"precision\": null}",
                PyJson.write(s.toJson()));
        assertEquals(1, p.models.size());
        assertEquals("a", p.models.get(0).key);
        // The validated plan is the input with merged settings (extra keys kept).
        assertTrue(p.toJson().containsKey("settings"));
    }

    @Test
    public void givenSettingsOverrideAndKeepTheirJsonType() throws Exception {
        Plan p = plan(withSettings("{\"threads\": 4, \"min_seconds\": 2, \"max_seconds\": 2.5, \"delegate\": \"none\", "
                + "\"cpus\": [4, 5, 6, 7], \"warmup_runs\": 0}"));
        assertEquals(4, p.settings.threads);
        assertEquals(0, p.settings.warmupRuns);
        assertEquals(2.0, p.settings.minSeconds, 0);
        assertEquals(Arrays.asList(4L, 5L, 6L, 7L), p.settings.cpus);
        assertEquals("none", p.settings.delegate);
        // min_seconds stays the integer 2, as in Python's merged dict.
        assertEquals(2L, p.settings.toJson().get("min_seconds"));
        // int against float comparisons are exact: max_seconds 2.5 >= min_seconds 2.
        plan(withSettings("{\"min_seconds\": 2, \"max_seconds\": 2.0}"));
        plan(withSettings("{\"min_runs\": 3, \"max_runs\": 3, \"cpus\": []}"));
        // Integers beyond a long are ints in Python and here.
        Plan big = plan(withSettings("{\"max_runs\": 100000000000000000000000}"));
        assertEquals(Long.MAX_VALUE, big.settings.maxRuns);
    }

    @Test
    public void documentErrors() {
        assertRejected("[1, 2]", "a plan is a JSON object");
        assertRejected("{\"schema\": \"plaid.plan/2\"}", "plan schema must be 'plaid.plan/1', got 'plaid.plan/2'");
        assertRejected("{\"runtime\": \"tflite\"}", "plan schema must be 'plaid.plan/1', got None");
        assertRejected("{\"schema\": \"plaid.plan/1\", \"runtime\": \"onnx\"}", "runtime 'onnx' is not supported here (tflite)");
        assertRejected("{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\"}", "plan needs a non-empty 'models' list");
        assertRejected("{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", \"models\": []}",
                "plan needs a non-empty 'models' list");
        assertRejected("{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", \"models\": {\"a\": 1}}",
                "plan needs a non-empty 'models' list");
        assertRejected("{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", \"models\": [{\"key\": \"a\"}]}",
                "each model needs string 'key' and 'path': {'key': 'a'}");
        assertRejected("{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", \"models\": [{\"key\": 1, \"path\": \"x\"}]}",
                "each model needs string 'key' and 'path': {'key': 1, 'path': 'x'}");
        assertRejected("{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", \"models\": [\"a\"]}",
                "each model needs string 'key' and 'path': 'a'");
        assertRejected("{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", \"models\": "
                + "[{\"key\": \"a\", \"path\": \"x\"}, {\"key\": \"a\", \"path\": \"y\"}]}", "model key 'a' appears twice");
    }

    @Test
    public void settingErrors() {
        assertRejected(withSettings("{\"thread\": 1, \"zz\": 2, \"Aa\": 3}"), "unknown settings ['Aa', 'thread', 'zz']");
        assertRejected(withSettings("{\"threads\": \"4\"}"), "setting 'threads' has the wrong type: '4'");
        assertRejected(withSettings("{\"threads\": 4.0}"), "setting 'threads' has the wrong type: 4.0");
        assertRejected(withSettings("{\"threads\": true}"), "setting 'threads' has the wrong type: True");
        assertRejected(withSettings("{\"threads\": 1e-5}"), "setting 'threads' has the wrong type: 1e-05");
        assertRejected(withSettings("{\"min_seconds\": true}"), "setting 'min_seconds' has the wrong type: True");
        assertRejected(withSettings("{\"min_seconds\": \"1\"}"), "setting 'min_seconds' has the wrong type: '1'");
        assertRejected(withSettings("{\"delegate\": null}"), "setting 'delegate' has the wrong type: None");
        assertRejected(withSettings("{\"cpus\": \"4-7\"}"), "setting 'cpus' has the wrong type: '4-7'");
        assertRejected(withSettings("{\"cpus\": {\"a\": 1}}"), "setting 'cpus' has the wrong type: {'a': 1}");
        String bounds = "threads and min_runs must be >= 1, warmup_runs >= 0";
        assertRejected(withSettings("{\"threads\": 0}"), bounds);
        assertRejected(withSettings("{\"min_runs\": 0}"), bounds);
        assertRejected(withSettings("{\"warmup_runs\": -1}"), bounds);
        String caps = "max_runs/max_seconds must not be below min_runs/min_seconds";
        assertRejected(withSettings("{\"max_runs\": 10}"), caps);
        assertRejected(withSettings("{\"max_seconds\": 0.5}"), caps);
        assertRejected(withSettings("{\"min_seconds\": 30}"), caps);
        assertRejected(withSettings("{\"delegate\": \"nnapi\"}"), "delegate must be xnnpack, none or gpu, got 'nnapi'");
        String cpus = "cpus must be a list of CPU numbers";
        assertRejected(withSettings("{\"cpus\": [4, -1]}"), cpus);
        assertRejected(withSettings("{\"cpus\": [4, 5.0]}"), cpus);
        assertRejected(withSettings("{\"cpus\": [\"4\"]}"), cpus);
        // Stricter than Python, where True is an int: a boolean is not a CPU number.
        assertRejected(withSettings("{\"cpus\": [true]}"), cpus);
        // Python raises a TypeError for these; here they get a clear message.
        assertRejected(withSettings("null"), "plan 'settings' must be a JSON object, got None");
        assertRejected(withSettings("[\"threads\"]"), "plan 'settings' must be a JSON object, got ['threads']");
    }

    @Test
    public void typeErrorsComeBeforeBoundErrorsInDeviceBenchsOrder() {
        // threads is checked for its type before min_runs for its bound.
        assertRejected(withSettings("{\"min_runs\": 0, \"cpus\": 3}"), "setting 'cpus' has the wrong type: 3");
        assertRejected(withSettings("{\"threads\": 0, \"delegate\": \"gpu2\"}"),
                "threads and min_runs must be >= 1, warmup_runs >= 0");
    }

    @Test
    public void modelPathsResolveAgainstThePlanFolder() throws Exception {
        File dir = tmp.newFolder("plans");
        File planFile = new File(dir, "plan.json");
        Files.write(planFile.toPath(), ("{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", \"models\": ["
                + "{\"key\": \"rel\", \"path\": \"units/a.tflite\"}, {\"key\": \"abs\", \"path\": \"/data/x.tflite\"}]}")
                .getBytes("UTF-8"));
        Plan p = Plan.read(planFile);
        assertEquals(new File(dir, "units/a.tflite"), p.models.get(0).resolve(dir));
        assertEquals(new File("/data/x.tflite"), p.models.get(1).resolve(dir));
    }

    @Test
    public void planFilesMustBeUtf8() throws Exception {
        File f = tmp.newFile("latin1.json");
        Files.write(f.toPath(), new byte[] {'"', (byte) 0xe9, '"'});
        Exception e = assertThrows(java.io.IOException.class, () -> Plan.read(f));
        assertTrue(e.getMessage().contains("not valid UTF-8"));
    }

    @Test
    public void validatedPlanRoundTrips() throws Exception {
        Plan p = plan(withSettings("{\"threads\": 2}"));
        Plan again = Plan.parse(PyJson.parse(PyJson.write(p.toJson())));
        assertEquals(p.toJson(), again.toJson());
        Map<?, ?> models = (Map<?, ?>) ((List<?>) again.toJson().get("models")).get(0);
        assertEquals("a.tflite", models.get("path"));
    }
}
