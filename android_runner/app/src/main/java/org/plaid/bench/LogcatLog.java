package org.plaid.bench;

import android.util.Log;
import org.plaid.bench.core.RunLog;

/** The runner's log on logcat, tag "plaid-bench" ({@code adb logcat -s plaid-bench}). */
class LogcatLog implements RunLog {
    static final String TAG = "plaid-bench";
    /** logcat cuts entries at about 4 KB; longer lines go out in pieces. */
    private static final int CHUNK = 3000;

    @Override
    public void info(String message) {
        for (int i = 0; i < message.length(); i += CHUNK) {
            Log.i(TAG, message.substring(i, Math.min(message.length(), i + CHUNK)));
        }
    }

    @Override
    public void warn(String message) {
        Log.w(TAG, message);
    }

    @Override
    public void error(String message, Throwable error) {
        if (error == null) {
            Log.e(TAG, message);
        } else {
            Log.e(TAG, message, error);
        }
    }
}
