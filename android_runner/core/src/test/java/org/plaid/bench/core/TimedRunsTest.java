package org.plaid.bench.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import org.junit.Test;

/** The stopping rules of device_bench's timed_runs, driven by a clock that only the model moves. */
public class TimedRunsTest {
    private static Settings settings(String json) throws Exception {
        return Settings.parse(PyJson.parse(json));
    }

    /** Costs the given milliseconds per call, the last one repeating; counts calls. */
    private static final class Scripted implements Invocable {
        final ManualClock clock;
        final double[] costs;
        int calls;

        Scripted(ManualClock clock, double... costs) {
            this.clock = clock;
            this.costs = costs;
        }

        @Override
        public void invoke() {
            clock.advanceMillis(costs[Math.min(calls, costs.length - 1)]);
            calls++;
        }
    }

    private static double[] run(String settingsJson, double... costs) throws Exception {
        ManualClock clock = new ManualClock(123_456_789L);
        return TimedRuns.measure(new Scripted(clock, costs), settings(settingsJson), clock);
    }

    @Test
    public void minSecondsGovernsWhenRunsAreCheap() throws Exception {
        // 10 ms a run, 5 runs wanted but 0.1 s too: the 10th run ends at exactly 0.1 s.
        double[] t = run("{\"warmup_runs\": 0, \"min_runs\": 5, \"min_seconds\": 0.1}", 10);
        assertEquals(10, t.length);
        for (double ms : t) {
            assertEquals(10.0, ms, 0);
        }
    }

    @Test
    public void minRunsGovernsWhenRunsAreSlow() throws Exception {
        double[] t = run("{\"warmup_runs\": 0, \"min_runs\": 5, \"min_seconds\": 0.1}", 100);
        assertEquals(5, t.length);
    }

    @Test
    public void maxRunsCaps() throws Exception {
        double[] t = run("{\"warmup_runs\": 0, \"min_runs\": 3, \"max_runs\": 7, \"min_seconds\": 10, \"max_seconds\": 20}", 1);
        assertEquals(7, t.length);
    }

    @Test
    public void maxSecondsCapsBeforeMinRuns() throws Exception {
        // 300 ms a run, 100 runs wanted, but 2 s at most: the 7th run ends at 2.1 s.
        double[] t = run("{\"warmup_runs\": 0, \"min_runs\": 100, \"min_seconds\": 1, \"max_seconds\": 2}", 300);
        assertEquals(7, t.length);
    }

    @Test
    public void oneRunAlwaysHappensEvenPastMaxSeconds() throws Exception {
        double[] t = run("{\"warmup_runs\": 0, \"min_runs\": 1, \"min_seconds\": 0, \"max_seconds\": 0}", 5000);
        assertArrayEquals(new double[] {5000.0}, t, 0);
    }

    @Test
    public void warmupIsNotTimedAndDoesNotCountTowardTheSeconds() throws Exception {
        ManualClock clock = new ManualClock();
        // three 1 s warm-up runs, then 10 ms runs
        Scripted model = new Scripted(clock, 1000, 1000, 1000, 10);
        double[] t = TimedRuns.measure(model,
                settings("{\"warmup_runs\": 3, \"min_runs\": 4, \"min_seconds\": 0.05}"), clock);
        assertEquals(5, t.length); // 0.05 s of 10 ms runs; min_runs 4 already met
        for (double ms : t) {
            assertEquals(10.0, ms, 0);
        }
        assertEquals(3 + 5, model.calls);
    }

    @Test
    public void timeBetweenRunsCountsTowardTheSecondsButNotTheRun() throws Exception {
        // Every clock read costs 1 ms (like bookkeeping between runs); a run costs 2 ms.
        final ManualClock base = new ManualClock();
        Clock slowReads = new Clock() {
            @Override
            public long nanoTime() {
                long now = base.nanoTime();
                base.advanceMillis(1);
                return now;
            }
        };
        double[] t = TimedRuns.measure(new Scripted(base, 2), settings(
                "{\"warmup_runs\": 0, \"min_runs\": 1, \"min_seconds\": 0.02}"), slowReads);
        // start read (1 ms), then each run: t0 read (1 ms) + 2 ms, t1 read (1 ms). Each run's time
        // is 3 ms (t0's own read plus the model); run k ends at 4k ms after start -> k = 5 for 0.02 s.
        assertEquals(5, t.length);
        assertEquals(3.0, t[0], 0);
    }

    @Test
    public void anInvocationErrorPropagates() throws Exception {
        final ManualClock clock = new ManualClock();
        Invocable broken = new Invocable() {
            int calls;

            @Override
            public void invoke() {
                if (++calls == 4) {
                    throw new IllegalStateException("boom");
                }
                clock.advanceMillis(1);
            }
        };
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> TimedRuns.measure(broken, settings("{\"warmup_runs\": 2, \"min_runs\": 10}"), clock));
        assertEquals("boom", e.getMessage());
    }

    @Test
    public void aSelfTimedModelReportsItsOwnTimeWhileTheClockDrivesTheStoppingRules() throws Exception {
        final ManualClock clock = new ManualClock();
        class Native implements Model, SelfTimed {
            int calls;

            @Override
            public void invoke() {
                clock.advanceMillis(5); // 2 ms of copies around 3 ms of native work
                calls++;
            }

            @Override
            public long lastInvokeNanos() {
                return calls == 1 ? -1 : 3_000_000L; // the first one unknown: fall back to the clock
            }

            @Override
            public void close() {}
        }
        double[] t = TimedRuns.measure(new Native(),
                settings("{\"warmup_runs\": 0, \"min_runs\": 1, \"min_seconds\": 0.05}"), clock);
        assertEquals(10, t.length); // 10 x 5 ms of wall clock
        assertEquals(5.0, t[0], 0);
        assertEquals(3.0, t[9], 0);
    }

    @Test
    public void manyRunsGrowTheBuffer() throws Exception {
        double[] t = run("{\"warmup_runs\": 0, \"min_runs\": 3, \"max_runs\": 100000, \"min_seconds\": 5,"
                + " \"max_seconds\": 10}", 0.05);
        assertEquals(100000, t.length);
    }
}
