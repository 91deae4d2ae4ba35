package org.plaid.bench.core;

import static org.junit.Assert.assertEquals;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.Test;

/** The expected strings are what Python 3.11's repr() prints. */
public class PyReprTest {
    @Test
    public void scalars() {
        assertEquals("None", PyRepr.of(null));
        assertEquals("True", PyRepr.of(true));
        assertEquals("'abc'", PyRepr.of("abc"));
        assertEquals("\"it's\"", PyRepr.of("it's"));
        assertEquals("'both \\' and \"'", PyRepr.of("both ' and \""));
        assertEquals("'a\\nb\\\\c\\x07'", PyRepr.of("a\nb\\c\u0007"));
        assertEquals("'\u00e9'", PyRepr.of("\u00e9"));
        assertEquals("12", PyRepr.of(12L));
        assertEquals("123456789012345678901234567890", PyRepr.of(new BigInteger("123456789012345678901234567890")));
    }

    @Test
    public void floatsLikePython() {
        assertEquals("1.0", PyRepr.floatRepr(1.0));
        assertEquals("-0.0", PyRepr.floatRepr(-0.0));
        assertEquals("0.1", PyRepr.floatRepr(0.1));
        assertEquals("4.5", PyRepr.floatRepr(4.5));
        assertEquals("0.0001", PyRepr.floatRepr(1e-4));
        assertEquals("1e-05", PyRepr.floatRepr(1e-5));
        assertEquals("1.5e-07", PyRepr.floatRepr(1.5e-7));
        assertEquals("12345678.0", PyRepr.floatRepr(12345678.0));
        assertEquals("1000000000000000.0", PyRepr.floatRepr(1e15));
        assertEquals("1e+16", PyRepr.floatRepr(1e16));
        assertEquals("1.2345e+20", PyRepr.floatRepr(1.2345e20));
        assertEquals("1e+300", PyRepr.floatRepr(1e300));
        assertEquals("123.456", PyRepr.floatRepr(123.456));
        assertEquals("-20.5", PyRepr.floatRepr(-20.5));
    }

    @Test
    public void containers() {
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        m.put("key", 1L);
        m.put("path", Arrays.asList(true, null, 2.0));
        assertEquals("{'key': 1, 'path': [True, None, 2.0]}", PyRepr.of(m));
        assertEquals("[]", PyRepr.of(Arrays.asList()));
    }
}
