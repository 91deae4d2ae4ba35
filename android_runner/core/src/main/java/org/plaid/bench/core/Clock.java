package org.plaid.bench.core;

/** A monotonic clock in nanoseconds; tests inject a {@link ManualClock}. */
public interface Clock {
    long nanoTime();

    /** {@link System#nanoTime()}: monotonic, the same source as Python's perf_counter on Linux. */
    Clock SYSTEM = new Clock() {
        @Override
        public long nanoTime() {
            return System.nanoTime();
        }
    };
}
