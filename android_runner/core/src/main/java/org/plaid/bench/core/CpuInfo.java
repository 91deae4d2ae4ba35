package org.plaid.bench.core;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The CPU part of the device fingerprint, read from sysfs ({@code /sys/devices/system/cpu} on the
 * phone; a folder of the same shape in tests): online CPUs, each CPU's maximum frequency and
 * governor. Unreadable files give null entries, never an exception: SELinux policies differ.
 */
public final class CpuInfo {
    private CpuInfo() {}

    public static Map<String, Object> read(File cpuDir) {
        Map<String, Object> info = new LinkedHashMap<String, Object>();
        info.put("cpu_online", readLine(new File(cpuDir, "online")));
        List<Object> maxFreq = new ArrayList<Object>();
        List<Object> governor = new ArrayList<Object>();
        for (File cpu : cpus(cpuDir)) {
            String freq = readLine(new File(cpu, "cpufreq/cpuinfo_max_freq"));
            Long khz = null;
            if (freq != null) {
                try {
                    khz = Long.parseLong(freq);
                } catch (NumberFormatException e) {
                    khz = null;
                }
            }
            maxFreq.add(khz);
            governor.add(readLine(new File(cpu, "cpufreq/scaling_governor")));
        }
        info.put("cpu_max_freq_khz", maxFreq);
        info.put("cpu_governor", governor);
        return info;
    }

    /** cpu0, cpu1, ... cpu10 in numeric order. */
    static List<File> cpus(File cpuDir) {
        File[] found = cpuDir.listFiles();
        List<File> cpus = new ArrayList<File>();
        if (found == null) {
            return cpus;
        }
        for (File f : found) {
            if (f.isDirectory() && f.getName().matches("cpu[0-9]+")) {
                cpus.add(f);
            }
        }
        File[] sorted = cpus.toArray(new File[0]);
        Arrays.sort(sorted, new Comparator<File>() {
            @Override
            public int compare(File a, File b) {
                return Long.compare(Long.parseLong(a.getName().substring(3)), Long.parseLong(b.getName().substring(3)));
            }
        });
        return Arrays.asList(sorted);
    }

    static String readLine(File f) {
        try {
            return Plan.readUtf8(f).trim();
        } catch (IOException | SecurityException e) {
            return null;
        }
    }
}
