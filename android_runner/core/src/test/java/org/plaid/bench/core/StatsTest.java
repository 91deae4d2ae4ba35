package org.plaid.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.util.ArrayList;
import java.util.Arrays;
import org.junit.Test;

/** Values worked out by hand (numpy's linear percentile: index (n-1)*0.9, lerp between neighbours). */
public class StatsTest {
    private static final double EPS = 1e-12;

    @Test
    public void oneRun() {
        Stats s = Stats.of(new double[] {5.0});
        assertEquals(5.0, s.medianMs, 0);
        assertEquals(5.0, s.p90Ms, 0);
        assertEquals(5.0, s.meanMs, 0);
        assertEquals(0.0, s.stdMs, 0);
        assertEquals(0.0, s.cv, 0);
        assertEquals(5.0, s.minMs, 0);
        assertEquals(1, s.runs);
    }

    @Test
    public void fourRuns() {
        // sorted 1 2 3 4: median (2+3)/2; p90 index 3*0.9 = 2.7 -> 3 + 0.7*(4-3) = 3.7;
        // std = sqrt((2.25+0.25+0.25+2.25)/3) = sqrt(5/3)
        Stats s = Stats.of(new double[] {4, 1, 3, 2});
        assertEquals(2.5, s.medianMs, 0);
        assertEquals(3.7, s.p90Ms, EPS);
        assertEquals(2.5, s.meanMs, 0);
        assertEquals(Math.sqrt(5.0 / 3.0), s.stdMs, EPS);
        assertEquals(Math.sqrt(5.0 / 3.0) / 2.5, s.cv, EPS);
        assertEquals(1.0, s.minMs, 0);
        assertEquals(4, s.runs);
    }

    @Test
    public void p90Interpolation() {
        // n=2: index 0.9 -> 1 + 0.9*(3-1) = 2.8
        assertEquals(2.8, Stats.of(new double[] {3, 1}).p90Ms, EPS);
        // n=3 unsorted: index 1.8 -> 2 + 0.8*(3-2) = 2.8; median is the middle value
        Stats three = Stats.of(new double[] {3, 1, 2});
        assertEquals(2.8, three.p90Ms, EPS);
        assertEquals(2.0, three.medianMs, 0);
        assertEquals(1.0, three.stdMs, EPS);
        // n=10 (1..10): index 8.1 -> 9 + 0.1*(10-9) = 9.1; median 5.5
        double[] ten = new double[10];
        for (int i = 0; i < 10; i++) {
            ten[i] = i + 1;
        }
        assertEquals(9.1, Stats.of(ten).p90Ms, EPS);
        assertEquals(5.5, Stats.of(ten).medianMs, 0);
        // n=11 (0..10): index exactly 9.0 -> the 10th value, no interpolation
        double[] eleven = new double[11];
        for (int i = 0; i <= 10; i++) {
            eleven[i] = i;
        }
        assertEquals(9.0, Stats.of(eleven).p90Ms, 0);
        // an outlier pulls p90 only as far as the interpolation says: index 4.5 -> 1 + 0.5*(101-1)
        assertEquals(51.0, Stats.of(new double[] {1, 1, 1, 1, 1, 101}).p90Ms, EPS);
        // numpy interpolates from the upper neighbour when the weight is >= 0.5, which differs
        // in the last bit from 3.92 + (8.9 - 3.92) * 0.8 = 7.904: np.percentile gives this
        assertEquals(7.904000000000001, Stats.of(new double[] {3.38, 3.92, 8.9}).p90Ms, 0);
        // equal values interpolate to themselves
        assertEquals(7.25, Stats.of(new double[] {7.25, 7.25, 7.25}).p90Ms, 0);
    }

    @Test
    public void percentileBoundsAndOtherQuantiles() {
        double[] sorted = {10, 20, 30, 40, 50};
        assertEquals(10.0, Stats.percentile(sorted, 0), 0);
        assertEquals(50.0, Stats.percentile(sorted, 100), 0);
        assertEquals(30.0, Stats.percentile(sorted, 50), 0);
        assertEquals(20.0 + 0.25 * 10, Stats.percentile(sorted, 31.25), EPS);
    }

    @Test
    public void meanAndStdUseNumpysPairwiseSummation() {
        // Sequential summation gives 0.9999999999999999 for ten 0.1s; numpy's pairwise sum gives
        // exactly 1.0, hence mean exactly 0.1 and std exactly 0 in device_bench.
        double[] tenths = new double[10];
        Arrays.fill(tenths, 0.1);
        Stats s = Stats.of(tenths);
        assertEquals(0.1, s.meanMs, 0);
        assertEquals(0.0, s.stdMs, 0);
        assertEquals(0.0, s.cv, 0);
        assertEquals(1.0, Stats.sum(tenths), 0);
        // 300 values: what numpy 1.26 prints for this array.
        double[] a = new double[300];
        for (int i = 0; i < 300; i++) {
            a[i] = 0.1 * i + 0.01 * (i % 7);
        }
        Stats big = Stats.of(a);
        assertEquals(14.975, big.medianMs, 0);
        assertEquals(26.941000000000006, big.p90Ms, 0);
        assertEquals(14.9799, big.meanMs, 0);
        assertEquals(8.674988939493494, big.stdMs, 0);
        assertEquals(0.5791086014922324, big.cv, 0);
    }

    @Test
    public void zeroMeanHasZeroCv() {
        Stats s = Stats.of(new double[] {0.0, 0.0});
        assertEquals(0.0, s.cv, 0);
        assertEquals(0.0, s.stdMs, 0);
    }

    @Test
    public void inputIsNotReordered() {
        double[] t = {3, 1, 2};
        Stats.of(t);
        assertEquals(3.0, t[0], 0);
    }

    @Test
    public void noRunsIsAnError() {
        assertThrows(IllegalArgumentException.class, () -> Stats.of(new double[0]));
    }

    @Test
    public void jsonKeysInDeviceBenchsOrder() {
        assertEquals(Arrays.asList("median_ms", "p90_ms", "mean_ms", "std_ms", "cv", "min_ms", "runs"),
                new ArrayList<String>(Stats.of(new double[] {1, 2}).toJson().keySet()));
        assertEquals(2L, Stats.of(new double[] {1, 2}).toJson().get("runs"));
    }
}
