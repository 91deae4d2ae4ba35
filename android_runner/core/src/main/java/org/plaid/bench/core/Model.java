package org.plaid.bench.core;

/** A loaded model with its inputs set, ready to be invoked repeatedly; close frees it. */
public interface Model extends Invocable, AutoCloseable {
    @Override
    void close();
}
