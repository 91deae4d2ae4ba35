package org.plaid.bench;

import android.app.Activity;
import android.content.Intent;
import android.os.Build;
import android.os.Bundle;
import android.os.Process;
import android.view.WindowManager;
import android.widget.TextView;
import java.io.File;
import java.util.concurrent.atomic.AtomicBoolean;
import org.plaid.bench.core.Clock;
import org.plaid.bench.core.PlanRunner;
import org.plaid.bench.core.RunLog;

/**
 * Runs one plaid benchmark plan and finishes. Host contract (android_runner/README.md):
 *
 * <pre>
 * am start -S -W -n org.plaid.bench/.BenchActivity --es plan PLAN.json --es out RESULTS.json
 * </pre>
 *
 * writes {@code RESULTS.json.events.jsonl} (one line per finished model) while running and
 * {@code RESULTS.json} (atomically) at the end, or {@code RESULTS.json} with a top-level "error".
 * The plan runs on a background thread while the activity stays in the foreground with the
 * screen on: Android gives the foreground app's threads the big cores (top-app cpuset), a
 * backgrounded app may be confined to the little ones.
 */
public final class BenchActivity extends Activity {
    /** One run per process: a second intent while one runs is logged and ignored. */
    private static final AtomicBoolean RUNNING = new AtomicBoolean();

    private TextView status;
    private RunLog log;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        getWindow().addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON);
        if (Build.VERSION.SDK_INT >= 27) {
            setShowWhenLocked(true); // stay visible, hence foreground, over a lock screen
            setTurnScreenOn(true);
        }
        status = new TextView(this);
        status.setKeepScreenOn(true);
        status.setPadding(32, 32, 32, 32);
        status.setTextIsSelectable(true);
        setContentView(status);
        final LogcatLog logcat = new LogcatLog();
        log = new RunLog() {
            @Override
            public void info(String message) {
                logcat.info(message);
                show(message);
            }

            @Override
            public void warn(String message) {
                logcat.warn(message);
                show("warning: " + message);
            }

            @Override
            public void error(String message, Throwable error) {
                logcat.error(message, error);
                show("error: " + message);
            }
        };
        // Creates /sdcard/Android/data/org.plaid.bench/files/ if the host has not yet.
        getExternalFilesDir(null);
        start(getIntent());
    }

    @Override
    protected void onNewIntent(Intent intent) {
        super.onNewIntent(intent);
        setIntent(intent);
        start(intent);
    }

    @Override
    protected void onStop() {
        super.onStop();
        if (RUNNING.get()) {
            log.warn("left the foreground while measuring: later timings may run on the little cores");
        }
    }

    private void start(Intent intent) {
        final String plan = intent.getStringExtra("plan");
        final String out = intent.getStringExtra("out");
        if (out == null) {
            log.error("no 'out' extra: am start -S -W -n org.plaid.bench/.BenchActivity"
                    + " --es plan PLAN.json --es out RESULTS.json", null);
            return; // nowhere to report to; stay open so a person sees why
        }
        if (!RUNNING.compareAndSet(false, true)) {
            log.warn("a plan is running already; ignoring plan " + plan);
            return;
        }
        Thread worker = new Thread(() -> {
            int rc = 2;
            try {
                trySetPriority();
                if (plan == null) {
                    PlanRunner.reportFailure(new File(out), "no 'plan' extra in the intent (--es plan PLAN.json)", log);
                } else {
                    rc = new PlanRunner(new TfliteModelLoader(), Clock.SYSTEM, log)
                            .runFiles(new File(plan), new File(out), new AndroidEnvironment());
                }
            } catch (RuntimeException | Error e) {
                PlanRunner.reportFailure(new File(out), PlanRunner.oneLine(e), log);
            } finally {
                RUNNING.set(false);
                final int code = rc;
                runOnUiThread(() -> {
                    log.info("finished (" + (code == 0 ? "all models measured" : code == 1 ? "some models failed"
                            : "run failed") + ")");
                    finishAndRemoveTask();
                });
            }
        }, "plaid-bench");
        worker.start();
    }

    /** Foreground priority; the interpreter's worker threads inherit it when they are created. */
    private void trySetPriority() {
        try {
            Process.setThreadPriority(Process.THREAD_PRIORITY_FOREGROUND);
        } catch (RuntimeException e) {
            log.warn("cannot raise the benchmark thread's priority: " + e.getMessage());
        }
    }

    private void show(final String message) {
        runOnUiThread(() -> status.setText(message.length() > 2000 ? message.substring(0, 2000) + "…" : message));
    }
}
