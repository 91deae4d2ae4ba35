package org.plaid.bench.core;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The statistics of device_bench/runner.py {@code stats}: median, p90 (numpy's default linear
 * interpolation), mean, sample std (ddof=1), cv = std/mean, min and the number of runs.
 *
 * <p>The arithmetic follows numpy 1.26's float64 reductions step by step (pairwise summation in
 * blocks of 8192, the two-sided lerp of {@code np.percentile}), so the numbers agree with
 * device_bench's to the last bit, not just approximately.
 */
public final class Stats {
    public final double medianMs;
    public final double p90Ms;
    public final double meanMs;
    public final double stdMs;
    public final double cv;
    public final double minMs;
    public final long runs;

    private Stats(double median, double p90, double mean, double std, double cv, double min, long runs) {
        this.medianMs = median;
        this.p90Ms = p90;
        this.meanMs = mean;
        this.stdMs = std;
        this.cv = cv;
        this.minMs = min;
        this.runs = runs;
    }

    public static Stats of(double[] timesMs) {
        int n = timesMs.length;
        if (n == 0) {
            throw new IllegalArgumentException("statistics need at least one run");
        }
        double[] sorted = timesMs.clone();
        Arrays.sort(sorted);
        double mean = sum(timesMs) / n;
        double std = 0.0;
        if (n > 1) {
            double[] sq = new double[n];
            for (int i = 0; i < n; i++) {
                double d = timesMs[i] - mean;
                sq[i] = d * d;
            }
            std = Math.sqrt(sum(sq) / (n - 1));
        }
        return new Stats(median(sorted), percentile(sorted, 90.0), mean, std, mean > 0 ? std / mean : 0.0,
                sorted[0], n);
    }

    /** numpy's median of sorted data: the middle value, or the mean of the two middle values. */
    static double median(double[] sorted) {
        int n = sorted.length;
        if (n % 2 == 1) {
            return sorted[n / 2];
        }
        return (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
    }

    /** numpy's percentile(a, q) with the default method "linear" (Hyndman and Fan type 7). */
    static double percentile(double[] sorted, double q) {
        int n = sorted.length;
        double virtual = (n - 1) * (q / 100.0);
        if (virtual >= n - 1) {
            return sorted[n - 1];
        }
        if (virtual < 0) {
            return sorted[0];
        }
        int lo = (int) Math.floor(virtual);
        double a = sorted[lo];
        double b = sorted[lo + 1];
        double t = virtual - lo;
        double diff = b - a;
        return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
    }

    /** numpy's float64 add.reduce: pairwise sums of blocks of 8192 values, added in order. */
    static double sum(double[] a) {
        double s = 0.0;
        for (int start = 0; start < a.length; start += 8192) {
            s += pairwise(a, start, Math.min(8192, a.length - start));
        }
        return s;
    }

    private static double pairwise(double[] a, int off, int n) {
        if (n < 8) {
            double res = 0.0;
            for (int i = 0; i < n; i++) {
                res += a[off + i];
            }
            return res;
        }
        if (n <= 128) {
            double[] r = new double[8];
            System.arraycopy(a, off, r, 0, 8);
            int i;
            for (i = 8; i < n - (n % 8); i += 8) {
                for (int j = 0; j < 8; j++) {
                    r[j] += a[off + i + j];
                }
            }
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) {
                res += a[off + i];
            }
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise(a, off, n2) + pairwise(a, off + n2, n - n2);
    }

    /** The statistics keys of a result row, in device_bench's order. */
    public Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        m.put("median_ms", medianMs);
        m.put("p90_ms", p90Ms);
        m.put("mean_ms", meanMs);
        m.put("std_ms", stdMs);
        m.put("cv", cv);
        m.put("min_ms", minMs);
        m.put("runs", runs);
        return m;
    }
}
