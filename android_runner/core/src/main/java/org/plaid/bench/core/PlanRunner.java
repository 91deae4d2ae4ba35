package org.plaid.bench.core;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONException;

/**
 * Runs a plan model by model, like device_bench/runner.py {@code run_plan}: a model that fails
 * (missing file, load error, an invocation throwing) becomes a {@code "status": "error"} row and
 * the next model runs. {@link #runFiles} is the whole host contract: read the plan, append
 * events, write the results document atomically, or a document with a top-level "error".
 */
public final class PlanRunner {
    public static final String RESULTS_SCHEMA = "plaid.results/1";
    private static final int MAX_ERROR_CHARS = 500;

    /** Receives every event ("start", then one "result" per model) as it happens. */
    public interface Listener {
        void event(Map<String, Object> event) throws IOException;
    }

    private final ModelLoader loader;
    private final Clock clock;
    private final RunLog log;

    public PlanRunner(ModelLoader loader, Clock clock, RunLog log) {
        this.loader = loader;
        this.clock = clock;
        this.log = log;
    }

    /** The empty results document that {@link #runInto} fills. */
    public static Map<String, Object> newResults(Plan plan, RunEnvironment env) {
        Map<String, Object> doc = new LinkedHashMap<String, Object>();
        doc.put("schema", RESULTS_SCHEMA);
        doc.put("runtime", env.runtime());
        doc.put("device", env.device());
        doc.put("settings", plan.settings.toJson());
        if (plan.settings.cpus != null && !plan.settings.cpus.isEmpty()) {
            List<Object> warnings = new ArrayList<Object>();
            warnings.add("settings.cpus " + PyRepr.of(plan.settings.cpus) + " not applied: an app cannot pin"
                    + " its threads (use the benchmark_model runner with taskset for that)");
            doc.put("warnings", warnings);
        }
        doc.put("results", new ArrayList<Object>());
        return doc;
    }

    /** Runs every model of the plan, appending rows to {@code doc} (from {@link #newResults}). */
    public void runInto(Map<String, Object> doc, Plan plan, File base, Listener listener) throws IOException {
        @SuppressWarnings("unchecked")
        List<Object> rows = (List<Object>) doc.get("results");
        Map<String, Object> start = new LinkedHashMap<String, Object>();
        start.put("event", "start");
        start.put("runtime", doc.get("runtime"));
        start.put("device", doc.get("device"));
        start.put("models", (long) plan.models.size());
        if (doc.containsKey("warnings")) {
            for (Object w : (List<?>) doc.get("warnings")) {
                log.warn((String) w);
            }
        }
        listener.event(start);
        for (Plan.Entry entry : plan.models) {
            Map<String, Object> row = measure(entry, plan.settings, base);
            rows.add(row);
            Map<String, Object> event = new LinkedHashMap<String, Object>();
            event.put("event", "result");
            event.putAll(row);
            listener.event(event);
        }
    }

    /** One model's result row: key, status and statistics, or key, status "error" and error. */
    public Map<String, Object> measure(Plan.Entry entry, Settings settings, File base) {
        Map<String, Object> row = new LinkedHashMap<String, Object>();
        row.put("key", entry.key);
        File file = entry.resolve(base);
        try {
            if (!file.isFile()) {
                throw new FileNotFoundException("model file not found: " + file);
            }
            Stats stats;
            Model model = loader.load(file, settings);
            try {
                stats = Stats.of(TimedRuns.measure(model, settings, clock));
            } finally {
                model.close();
            }
            row.put("status", "ok");
            row.putAll(stats.toJson());
        } catch (Exception | LinkageError | OutOfMemoryError e) {
            // One failing model must not stop the plan (a missing native op, a delegate refusing).
            log.error(entry.key + ": " + oneLine(e), e);
            row.put("status", "error");
            row.put("error", oneLine(e));
        }
        return row;
    }

    /**
     * The host contract: plan file in, {@code <out>.events.jsonl} and {@code <out>} out.
     *
     * @return 0 when every model measured, 1 when some rows are errors, 2 when the run failed as a
     *     whole (then {@code <out>} holds a top-level "error", when it could be written at all)
     */
    public int runFiles(File planFile, File out, RunEnvironment env) {
        final ResultsWriter writer = new ResultsWriter(out);
        try {
            writer.start();
        } catch (IOException e) {
            log.error("cannot write results next to " + out + ": " + oneLine(e), e);
            return 2;
        }
        Plan plan;
        try {
            if (!planFile.isFile()) {
                throw new FileNotFoundException("plan file not found");
            }
            plan = Plan.read(planFile);
        } catch (IOException | JSONException | SchemaException e) {
            String why = e instanceof SchemaException || e instanceof JSONException ? e.getMessage() : oneLine(e);
            fail(writer, null, planFile + ": " + why, e, log);
            return 2;
        }
        Map<String, Object> doc = null;
        try {
            doc = newResults(plan, env);
            File base = planFile.getAbsoluteFile().getParentFile();
            runInto(doc, plan, base, new Listener() {
                @Override
                public void event(Map<String, Object> event) throws IOException {
                    log.info(PyJson.write(event));
                    if ("result".equals(event.get("event"))) {
                        writer.appendEvent(event);
                    }
                }
            });
            writer.writeFinal(doc);
        } catch (Exception | LinkageError | OutOfMemoryError e) {
            fail(writer, doc, oneLine(e), e, log);
            return 2;
        }
        List<?> rows = (List<?>) doc.get("results");
        int errors = 0;
        for (Object row : rows) {
            if (!"ok".equals(((Map<?, ?>) row).get("status"))) {
                errors++;
            }
        }
        log.info("done: " + rows.size() + " models, " + errors + " errors, results in " + out);
        return errors == 0 ? 0 : 1;
    }

    /**
     * Writes {@code <out>} with a top-level "error" (and an empty events file) for a run that
     * cannot even start, e.g. an intent without a plan.
     */
    public static void reportFailure(File out, String message, RunLog log) {
        ResultsWriter writer = new ResultsWriter(out);
        try {
            writer.start();
        } catch (IOException e) {
            log.error("cannot write results next to " + out + ": " + oneLine(e), e);
            return;
        }
        fail(writer, null, message, null, log);
    }

    private static void fail(ResultsWriter writer, Map<String, Object> partial, String message, Throwable cause,
            RunLog log) {
        log.error("run failed: " + message, cause);
        Map<String, Object> doc = new LinkedHashMap<String, Object>();
        doc.put("schema", RESULTS_SCHEMA);
        doc.put("error", oneLine(message));
        if (partial != null) {
            for (Map.Entry<String, Object> e : partial.entrySet()) {
                if (!doc.containsKey(e.getKey())) {
                    doc.put(e.getKey(), e.getValue());
                }
            }
        }
        try {
            writer.writeFinal(doc);
        } catch (IOException | RuntimeException e) {
            log.error("cannot write the error document " + writer.out() + ": " + oneLine(e), e);
        }
    }

    /** device_bench's one-line error: "Type: message", whitespace collapsed, at most 500 characters. */
    public static String oneLine(Throwable e) {
        String msg = e.getMessage();
        return oneLine(e.getClass().getSimpleName() + ": " + (msg == null ? "" : msg));
    }

    static String oneLine(String text) {
        String collapsed = text.trim().replaceAll("\\s+", " ");
        if (collapsed.codePointCount(0, collapsed.length()) <= MAX_ERROR_CHARS) {
            return collapsed;
        }
        return collapsed.substring(0, collapsed.offsetByCodePoints(0, MAX_ERROR_CHARS));
    }
}
