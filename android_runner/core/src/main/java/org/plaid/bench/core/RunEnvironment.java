package org.plaid.bench.core;

import java.util.Map;

/** What the results document says about where it was measured. */
public interface RunEnvironment {
    /** {"name": "tflite", "version": ...} */
    Map<String, Object> runtime();

    /** The device fingerprint (Build.* and sysfs on Android). */
    Map<String, Object> device();
}
