package org.plaid.bench.core;

/** A plan or results document that does not follow the schema (device_bench's SchemaError). */
public final class SchemaException extends Exception {
    private static final long serialVersionUID = 1L;

    public SchemaException(String message) {
        super(message);
    }
}
