package org.plaid.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class CliTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int cli(String stdin, String... args) throws Exception {
        return Cli.run(args, new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)),
                new PrintStream(out, true, "UTF-8"), new PrintStream(err, true, "UTF-8"));
    }

    @Test
    public void validatePlanPrintsTheMergedPlanOrOneErrorLine() throws Exception {
        File plan = tmp.newFile("plan.json");
        Files.write(plan.toPath(), "{\"schema\": \"plaid.plan/1\", \"runtime\": \"tflite\", \"models\": [{\"key\": \"k\", \"path\": \"p\"}]}"
                .getBytes(StandardCharsets.UTF_8));
        assertEquals(0, cli("", "validate-plan", plan.getPath()));
        Map<?, ?> doc = (Map<?, ?>) PyJson.parse(out.toString("UTF-8"));
        assertEquals(20L, ((Map<?, ?>) doc.get("settings")).get("min_runs"));
        Files.write(plan.toPath(), "{\"schema\": 1}".getBytes(StandardCharsets.UTF_8));
        assertEquals(2, cli("", "validate-plan", plan.getPath()));
        assertEquals("plaid-bench: error: " + plan.getPath() + ": plan schema must be 'plaid.plan/1', got 1\n",
                err.toString("UTF-8"));
    }

    @Test
    public void statsReadsAJsonList() throws Exception {
        assertEquals(0, cli("[4, 1, 3, 2]", "stats"));
        Map<?, ?> s = (Map<?, ?>) PyJson.parse(out.toString("UTF-8"));
        assertEquals(2.5, s.get("median_ms"));
        assertEquals(4L, s.get("runs"));
        assertEquals(2, cli("[]", "stats"));
        assertEquals(2, cli("{}", "stats"));
    }

    @Test
    public void usage() throws Exception {
        assertEquals(2, cli(""));
        assertEquals(2, cli("", "fake-run", "only-one"));
        assertTrue(err.toString("UTF-8").startsWith("usage: "));
    }
}
