package org.plaid.bench.core;

/** A clock that moves only when told to: the time a fake model "takes" is what it advances. */
public final class ManualClock implements Clock {
    private long now;

    public ManualClock() {
        this(0L);
    }

    public ManualClock(long startNanos) {
        this.now = startNanos;
    }

    @Override
    public synchronized long nanoTime() {
        return now;
    }

    public synchronized void advanceNanos(long nanos) {
        if (nanos < 0) {
            throw new IllegalArgumentException("a monotonic clock cannot go back");
        }
        now += nanos;
    }

    public void advanceMillis(double ms) {
        advanceNanos(Math.round(ms * 1e6));
    }
}
