package org.plaid.bench.core;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The timing settings of a plan, validated exactly like device_bench/schema.py
 * {@code validate_settings}: same defaults, same checks in the same order, same messages.
 *
 * <p>One deliberate difference: Python's {@code isinstance(True, int)} lets {@code "cpus": [true]}
 * through; here a boolean is not a CPU number.
 */
public final class Settings {
    /** Setting names in device_bench's order (DEFAULT_SETTINGS). */
    public static final List<String> NAMES = Collections.unmodifiableList(Arrays.asList(
            "threads", "warmup_runs", "min_runs", "max_runs", "min_seconds", "max_seconds", "delegate", "cpus",
            "precision"));

    public static final List<String> DELEGATES = Collections.unmodifiableList(Arrays.asList("xnnpack", "none", "gpu"));

    /** TensorRT's engine precisions (device_bench/tensorrt.py); the app, timing TFLite files, takes fp32 or null. */
    public static final List<String> PRECISIONS = Collections.unmodifiableList(Arrays.asList("fp32", "fp16", "int8"));

    public final int threads;
    public final long warmupRuns;
    public final long minRuns;
    public final long maxRuns;
    public final double minSeconds;
    public final double maxSeconds;
    /** "xnnpack", "none" or "gpu". */
    public final String delegate;
    /** CPU numbers to pin to, or null to leave affinity alone. */
    public final List<Long> cpus;
    /** "fp32", "fp16", "int8" or null (the runtime's own). */
    public final String precision;

    private final Map<String, Object> json;

    private Settings(Map<String, Object> merged) {
        this.json = Collections.unmodifiableMap(merged);
        this.threads = (int) Math.min(Integer.MAX_VALUE, clampLong(merged.get("threads")));
        this.warmupRuns = clampLong(merged.get("warmup_runs"));
        this.minRuns = clampLong(merged.get("min_runs"));
        this.maxRuns = clampLong(merged.get("max_runs"));
        this.minSeconds = ((Number) merged.get("min_seconds")).doubleValue();
        this.maxSeconds = ((Number) merged.get("max_seconds")).doubleValue();
        this.delegate = (String) merged.get("delegate");
        this.precision = (String) merged.get("precision");
        Object cpuList = merged.get("cpus");
        if (cpuList == null) {
            this.cpus = null;
        } else {
            List<Long> c = new ArrayList<Long>();
            for (Object o : (List<?>) cpuList) {
                c.add(clampLong(o));
            }
            this.cpus = Collections.unmodifiableList(c);
        }
    }

    public static Map<String, Object> defaults() {
        Map<String, Object> d = new LinkedHashMap<String, Object>();
        d.put("threads", 1L);
        d.put("warmup_runs", 5L);
        d.put("min_runs", 20L);
        d.put("max_runs", 1000L);
        d.put("min_seconds", 1.0);
        d.put("max_seconds", 20.0);
        d.put("delegate", "xnnpack");
        d.put("cpus", null);
        d.put("precision", null);
        return d;
    }

    /** The settings with defaults filled in, as a JSON object (for the results document). */
    public Map<String, Object> toJson() {
        return json;
    }

    /** Validates a plan's "settings" object (absent: pass an empty map). */
    public static Settings parse(Object settings) throws SchemaException {
        if (!(settings instanceof Map)) {
            // device_bench crashes with a TypeError here; a plan deserves a clear message.
            throw new SchemaException("plan 'settings' must be a JSON object, got " + PyRepr.of(settings));
        }
        Map<?, ?> given = (Map<?, ?>) settings;
        TreeSet<String> unknown = new TreeSet<String>();
        for (Object k : given.keySet()) {
            if (!NAMES.contains(k)) {
                unknown.add((String) k);
            }
        }
        if (!unknown.isEmpty()) {
            throw new SchemaException("unknown settings " + PyRepr.of(new ArrayList<String>(unknown)));
        }
        Map<String, Object> merged = defaults();
        for (Map.Entry<?, ?> e : given.entrySet()) {
            merged.put((String) e.getKey(), e.getValue());
        }
        for (String key : NAMES) {
            Object v = merged.get(key);
            if (!hasType(key, v)) {
                throw new SchemaException("setting " + PyRepr.of(key) + " has the wrong type: " + PyRepr.of(v));
            }
        }
        if (cmp(merged.get("threads"), 1) < 0 || cmp(merged.get("min_runs"), 1) < 0
                || cmp(merged.get("warmup_runs"), 0) < 0) {
            throw new SchemaException("threads and min_runs must be >= 1, warmup_runs >= 0");
        }
        if (cmp(merged.get("max_runs"), merged.get("min_runs")) < 0
                || cmp(merged.get("max_seconds"), merged.get("min_seconds")) < 0) {
            throw new SchemaException("max_runs/max_seconds must not be below min_runs/min_seconds");
        }
        if (!DELEGATES.contains(merged.get("delegate"))) {
            throw new SchemaException("delegate must be xnnpack, none or gpu, got " + PyRepr.of(merged.get("delegate")));
        }
        Object cpus = merged.get("cpus");
        if (cpus != null) {
            for (Object c : (List<?>) cpus) {
                if (!isInt(c) || cmp(c, 0) < 0) {
                    throw new SchemaException("cpus must be a list of CPU numbers");
                }
            }
        }
        Object precision = merged.get("precision");
        if (precision != null && !PRECISIONS.contains(precision)) {
            throw new SchemaException("precision must be fp32, fp16 or int8, got " + PyRepr.of(precision));
        }
        return new Settings(merged);
    }

    private static boolean hasType(String key, Object v) {
        if ("delegate".equals(key)) {
            return v instanceof String;
        }
        if ("cpus".equals(key)) {
            return v == null || v instanceof List;
        }
        if ("precision".equals(key)) {
            return v == null || v instanceof String;
        }
        if ("min_seconds".equals(key) || "max_seconds".equals(key)) {
            return isInt(v) || v instanceof Double;
        }
        return isInt(v);
    }

    static boolean isInt(Object v) {
        return v instanceof Long || v instanceof Integer || v instanceof BigInteger;
    }

    /** Exact numeric comparison of JSON numbers (int against float included, like Python). */
    static int cmp(Object a, Object b) {
        return decimal(a).compareTo(decimal(b));
    }

    private static BigDecimal decimal(Object v) {
        if (v instanceof BigInteger) {
            return new BigDecimal((BigInteger) v);
        }
        if (v instanceof Double) {
            return new BigDecimal((Double) v);
        }
        return BigDecimal.valueOf(((Number) v).longValue());
    }

    private static long clampLong(Object v) {
        if (v instanceof BigInteger) {
            return ((BigInteger) v).signum() > 0 ? Long.MAX_VALUE : Long.MIN_VALUE;
        }
        return ((Number) v).longValue();
    }
}
