package org.plaid.bench;

import android.os.Build;
import java.io.File;
import java.util.LinkedHashMap;
import java.util.Map;
import org.plaid.bench.core.CpuInfo;
import org.plaid.bench.core.RunEnvironment;
import org.tensorflow.lite.TensorFlowLite;

/**
 * "runtime" and "device" of the results document: the LiteRT artifact version and its native
 * runtime version; the device from Build.* and sysfs (CPU max frequencies and governors). The
 * host records its own fingerprint (getprop, sysfs over adb) with the table; this one says what
 * the app saw.
 */
final class AndroidEnvironment implements RunEnvironment {
    @Override
    public Map<String, Object> runtime() {
        String nativeVersion;
        try {
            nativeVersion = TensorFlowLite.runtimeVersion();
        } catch (RuntimeException | LinkageError e) {
            nativeVersion = "unknown";
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("name", "tflite");
        r.put("version", "litert " + BuildConfig.LITERT_VERSION + " (runtime " + nativeVersion + ")");
        return r;
    }

    @Override
    public Map<String, Object> device() {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("system", "android");
        d.put("machine", Build.SUPPORTED_ABIS.length > 0 ? Build.SUPPORTED_ABIS[0] : "unknown");
        String soc = Build.HARDWARE;
        if (Build.VERSION.SDK_INT >= 31) {
            soc = Build.SOC_MANUFACTURER + " " + Build.SOC_MODEL;
        }
        d.put("cpu_model", soc);
        d.put("cpu_count", (long) Runtime.getRuntime().availableProcessors());
        d.put("manufacturer", Build.MANUFACTURER);
        d.put("model", Build.MODEL);
        d.put("device", Build.DEVICE);
        d.put("board", Build.BOARD);
        d.put("hardware", Build.HARDWARE);
        d.put("sdk", (long) Build.VERSION.SDK_INT);
        d.put("release", Build.VERSION.RELEASE);
        d.put("fingerprint", Build.FINGERPRINT);
        d.putAll(CpuInfo.read(new File("/sys/devices/system/cpu")));
        d.put("app_version", BuildConfig.VERSION_NAME);
        return d;
    }
}
