package org.plaid.bench.core;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.Map;

/**
 * The files of the host contract: {@code <out>.events.jsonl} gets one JSON line per finished
 * model the moment it exists (flushed and synced, so a pull sees whole lines), and {@code <out>}
 * is written once at the end through {@code <out>.tmp} and a rename, so the host never reads a
 * half-written document.
 */
public final class ResultsWriter {
    private final File out;
    private final File events;
    private final File tmp;

    public ResultsWriter(File out) {
        this.out = out;
        this.events = new File(out.getPath() + ".events.jsonl");
        this.tmp = new File(out.getPath() + ".tmp");
    }

    public File out() {
        return out;
    }

    public File events() {
        return events;
    }

    /** Removes what an earlier run left and creates an empty events file (the "started" sign). */
    public void start() throws IOException {
        File dir = out.getAbsoluteFile().getParentFile();
        if (dir != null && !dir.isDirectory()) {
            throw new IOException("output folder " + dir + " does not exist");
        }
        Files.deleteIfExists(out.toPath());
        Files.deleteIfExists(tmp.toPath());
        write(events, new byte[0], false);
    }

    /** Appends one event as one line. */
    public void appendEvent(Map<String, Object> event) throws IOException {
        write(events, (PyJson.write(event) + "\n").getBytes(StandardCharsets.UTF_8), true);
    }

    /** Writes the final document: temp file, fsync, rename over {@code out}. */
    public void writeFinal(Map<String, Object> doc) throws IOException {
        write(tmp, PyJson.writePretty(doc).getBytes(StandardCharsets.UTF_8), false);
        try {
            Files.move(tmp.toPath(), out.toPath(), StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            // Same folder, so this only happens on odd file systems; rename(2) still replaces.
            if (!tmp.renameTo(out)) {
                throw new IOException("cannot rename " + tmp + " to " + out, e);
            }
        }
    }

    private static void write(File file, byte[] bytes, boolean append) throws IOException {
        FileOutputStream os = new FileOutputStream(file, append);
        try {
            os.write(bytes);
            os.flush();
            os.getFD().sync();
        } finally {
            os.close();
        }
    }
}
