package org.plaid.bench.core;

/**
 * A model that times its own invocations. The TFLite interpreter's Java API copies inputs in and
 * outputs out around every native invoke; its own duration of the native invoke alone is what
 * device_bench (which sets inputs once) and benchmark_model measure, so the app reports that.
 * The stopping rules still run on the wall clock.
 */
public interface SelfTimed {
    /** Nanoseconds of the last invocation's measured part, or a negative value to use the wall clock. */
    long lastInvokeNanos();
}
