package org.plaid.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class ResultsWriterTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private static Map<String, Object> event(String key) {
        Map<String, Object> e = new LinkedHashMap<String, Object>();
        e.put("event", "result");
        e.put("key", key);
        e.put("status", "ok");
        return e;
    }

    @Test
    public void startClearsWhatAnEarlierRunLeft() throws Exception {
        File out = new File(tmp.getRoot(), "results.json");
        Files.write(out.toPath(), "old".getBytes(StandardCharsets.UTF_8));
        Files.write(new File(out.getPath() + ".tmp").toPath(), "half".getBytes(StandardCharsets.UTF_8));
        Files.write(new File(out.getPath() + ".events.jsonl").toPath(), "{\"stale\": 1}\n".getBytes(StandardCharsets.UTF_8));
        ResultsWriter w = new ResultsWriter(out);
        w.start();
        assertFalse(out.exists());
        assertFalse(new File(out.getPath() + ".tmp").exists());
        assertTrue(w.events().isFile());
        assertEquals(0, w.events().length());
    }

    @Test
    public void eventsAreWholeLinesAppendedInOrder() throws Exception {
        ResultsWriter w = new ResultsWriter(new File(tmp.getRoot(), "r.json"));
        w.start();
        w.appendEvent(event("a"));
        w.appendEvent(event("b \u00e9\n"));
        List<String> lines = Files.readAllLines(w.events().toPath(), StandardCharsets.UTF_8);
        assertEquals(2, lines.size());
        assertEquals("{\"event\": \"result\", \"key\": \"a\", \"status\": \"ok\"}", lines.get(0));
        assertEquals("b \u00e9\n", ((Map<?, ?>) PyJson.parse(lines.get(1))).get("key"));
        assertTrue(new String(Files.readAllBytes(w.events().toPath()), StandardCharsets.UTF_8).endsWith("}\n"));
    }

    @Test
    public void finalDocumentIsRenamedIntoPlace() throws Exception {
        File out = new File(tmp.getRoot(), "r.json");
        ResultsWriter w = new ResultsWriter(out);
        w.start();
        Map<String, Object> doc = new LinkedHashMap<String, Object>();
        doc.put("schema", "plaid.results/1");
        doc.put("n", 1L);
        w.writeFinal(doc);
        assertEquals(doc, PyJson.parse(Plan.readUtf8(out)));
        doc.put("n", 2L);
        w.writeFinal(doc); // replaces
        assertEquals(2L, ((Map<?, ?>) PyJson.parse(Plan.readUtf8(out))).get("n"));
        assertFalse(new File(out.getPath() + ".tmp").exists());
        String[] names = tmp.getRoot().list();
        java.util.Arrays.sort(names);
        assertEquals("[r.json, r.json.events.jsonl]", java.util.Arrays.toString(names));
    }

    @Test
    public void aMissingOutputFolderIsAnErrorAtStart() {
        ResultsWriter w = new ResultsWriter(new File(tmp.getRoot(), "nope/r.json"));
        IOException e = assertThrows(IOException.class, w::start);
        assertTrue(e.getMessage().contains("does not exist"));
    }
}
