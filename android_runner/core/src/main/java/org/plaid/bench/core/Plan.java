package org.plaid.bench.core;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.json.JSONException;

/**
 * A benchmark plan, schema "plaid.plan/1", validated like device_bench/schema.py
 * {@code validate_plan} (same checks in the same order, same messages).
 */
public final class Plan {
    public static final String SCHEMA = "plaid.plan/1";

    /** One model of the plan: its table key and its path (relative to the plan's folder, or absolute). */
    public static final class Entry {
        public final String key;
        public final String path;

        Entry(String key, String path) {
            this.key = key;
            this.path = path;
        }

        /** The model file, resolved against the plan's folder when relative. */
        public File resolve(File base) {
            File f = new File(path);
            return f.isAbsolute() ? f : new File(base, path);
        }
    }

    public final List<Entry> models;
    public final Settings settings;
    private final Map<String, Object> json;

    private Plan(List<Entry> models, Settings settings, Map<String, Object> json) {
        this.models = models;
        this.settings = settings;
        this.json = json;
    }

    /** The plan as validated: the input object with "settings" replaced by the merged settings. */
    public Map<String, Object> toJson() {
        return json;
    }

    public static Plan parse(Object doc) throws SchemaException {
        if (!(doc instanceof Map)) {
            throw new SchemaException("a plan is a JSON object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> plan = (Map<String, Object>) doc;
        if (!SCHEMA.equals(plan.get("schema"))) {
            throw new SchemaException("plan schema must be " + PyRepr.of(SCHEMA) + ", got " + PyRepr.of(plan.get("schema")));
        }
        if (!"tflite".equals(plan.get("runtime"))) {
            throw new SchemaException("runtime " + PyRepr.of(plan.get("runtime")) + " is not supported here (tflite)");
        }
        Object models = plan.get("models");
        if (!(models instanceof List) || ((List<?>) models).isEmpty()) {
            throw new SchemaException("plan needs a non-empty 'models' list");
        }
        List<Entry> entries = new ArrayList<Entry>();
        Set<String> keys = new HashSet<String>();
        for (Object m : (List<?>) models) {
            if (!(m instanceof Map) || !(((Map<?, ?>) m).get("key") instanceof String)
                    || !(((Map<?, ?>) m).get("path") instanceof String)) {
                throw new SchemaException("each model needs string 'key' and 'path': " + PyRepr.of(m));
            }
            String key = (String) ((Map<?, ?>) m).get("key");
            if (!keys.add(key)) {
                throw new SchemaException("model key " + PyRepr.of(key) + " appears twice");
            }
            entries.add(new Entry(key, (String) ((Map<?, ?>) m).get("path")));
        }
        Object given = plan.containsKey("settings") ? plan.get("settings") : new LinkedHashMap<String, Object>();
        Settings settings = Settings.parse(given);
        if (settings.precision != null && !"fp32".equals(settings.precision)) {
            // device_bench's message: only its tensorrt runtime builds engines of a precision
            throw new SchemaException("precision " + PyRepr.of(settings.precision) + " needs the tensorrt runtime "
                    + "(tflite times the model file as it was converted)");
        }
        Map<String, Object> json = new LinkedHashMap<String, Object>(plan);
        json.put("settings", settings.toJson());
        return new Plan(Collections.unmodifiableList(entries), settings, Collections.unmodifiableMap(json));
    }

    /** Reads and validates a plan file (strict UTF-8 JSON). */
    public static Plan read(File file) throws IOException, JSONException, SchemaException {
        return parse(PyJson.parse(readUtf8(file)));
    }

    /** A whole file as UTF-8; malformed bytes are an error, not replacement characters. */
    public static String readUtf8(File file) throws IOException {
        byte[] bytes = Files.readAllBytes(file.toPath());
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new IOException(file + " is not valid UTF-8", e);
        }
    }
}
