package org.plaid.bench.core;

import static org.junit.Assert.assertEquals;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class CpuInfoTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private void put(File root, String path, String text) throws Exception {
        File f = new File(root, path);
        f.getParentFile().mkdirs();
        Files.write(f.toPath(), text.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    public void snapdragon845Layout() throws Exception {
        File cpu = tmp.newFolder("cpu");
        put(cpu, "online", "0-7\n");
        for (int i = 0; i < 8; i++) {
            put(cpu, "cpu" + i + "/cpufreq/cpuinfo_max_freq", (i < 4 ? "1766400" : "2803200") + "\n");
            put(cpu, "cpu" + i + "/cpufreq/scaling_governor", "schedutil\n");
        }
        new File(cpu, "cpufreq").mkdir(); // not a CPU
        new File(cpu, "cpuidle").mkdir(); // not a CPU
        Map<String, Object> info = CpuInfo.read(cpu);
        assertEquals("0-7", info.get("cpu_online"));
        assertEquals(Arrays.asList(1766400L, 1766400L, 1766400L, 1766400L, 2803200L, 2803200L, 2803200L, 2803200L),
                info.get("cpu_max_freq_khz"));
        assertEquals(8, ((java.util.List<?>) info.get("cpu_governor")).size());
        assertEquals("schedutil", ((java.util.List<?>) info.get("cpu_governor")).get(7));
    }

    @Test
    public void numericOrderAndUnreadableFilesAreNull() throws Exception {
        File cpu = tmp.newFolder("cpu");
        put(cpu, "cpu10/cpufreq/cpuinfo_max_freq", "3000000");
        put(cpu, "cpu2/cpufreq/cpuinfo_max_freq", "garbage");
        new File(cpu, "cpu9").mkdir();
        Map<String, Object> info = CpuInfo.read(cpu);
        assertEquals(Arrays.asList(null, null, 3000000L), info.get("cpu_max_freq_khz"));
        assertEquals(null, info.get("cpu_online"));
        assertEquals(Arrays.asList(null, null, null), info.get("cpu_governor"));
        assertEquals(0, ((java.util.List<?>) CpuInfo.read(new File(tmp.getRoot(), "absent")).get("cpu_governor")).size());
    }
}
