package org.plaid.bench.core;

/** One inference: what the timing loop measures. */
public interface Invocable {
    void invoke() throws Exception;
}
