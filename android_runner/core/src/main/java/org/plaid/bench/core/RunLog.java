package org.plaid.bench.core;

/** Where the runner's progress goes: logcat (tag "plaid-bench") in the app, stderr in the CLI. */
public interface RunLog {
    void info(String message);

    void warn(String message);

    /** {@code error} may be null. */
    void error(String message, Throwable error);

    RunLog SILENT = new RunLog() {
        @Override
        public void info(String message) {}

        @Override
        public void warn(String message) {}

        @Override
        public void error(String message, Throwable error) {}
    };
}
