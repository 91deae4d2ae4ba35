package org.plaid.bench.core;

/** Malformed JSON; the message says what was expected and where (line, column, char offset). */
public final class JsonException extends Exception {
    private static final long serialVersionUID = 1L;

    private final int offset;

    public JsonException(String message, int offset) {
        super(message);
        this.offset = offset;
    }

    /** Character offset of the problem in the input. */
    public int offset() {
        return offset;
    }
}
