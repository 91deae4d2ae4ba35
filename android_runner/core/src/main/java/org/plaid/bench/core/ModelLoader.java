package org.plaid.bench.core;

import java.io.File;

/**
 * Loads one model file for timing under the plan's settings (threads, delegate). The Android
 * app supplies the TFLite interpreter; the tests and {@code Cli fake-run} supply {@link FakeModelLoader}.
 * Any exception becomes that model's {@code "status": "error"} row; the other models still run.
 */
public interface ModelLoader {
    Model load(File file, Settings settings) throws Exception;
}
