package org.plaid.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONException;
import org.junit.Test;

public class PyJsonTest {
    private static Object parse(String s) throws JSONException {
        return PyJson.parse(s);
    }

    @Test
    public void scalarsKeepPythonsIntFloatDistinction() throws Exception {
        assertEquals(4L, parse("4"));
        assertEquals(-0L, parse("-0"));
        assertEquals(4.0, parse("4.0"));
        assertEquals(1000.0, parse("1e3"));
        assertEquals(-2.5e-7, parse("-2.5E-7"));
        assertEquals(new BigInteger("123456789012345678901234567890"), parse("123456789012345678901234567890"));
        assertEquals(Long.MAX_VALUE, parse("9223372036854775807"));
        assertEquals(new BigInteger("9223372036854775808"), parse("9223372036854775808"));
        assertEquals(Boolean.TRUE, parse("true"));
        assertEquals(Boolean.FALSE, parse(" false "));
        assertNull(parse("\n\tnull\r\n"));
    }

    @Test
    public void stringsWithEscapesAndUnicode() throws Exception {
        assertEquals("a\"b\\c/d\b\f\n\r\t", parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\""));
        assertEquals("\u00e9\u4e2d", parse("\"\\u00e9\\u4E2D\""));
        assertEquals("\u00e9\u4e2d", parse("\"\u00e9\u4e2d\""));
        // An escaped surrogate pair is one code point (U+1F600).
        String smile = (String) parse("\"\\ud83d\\ude00\"");
        assertEquals(1, smile.codePointCount(0, smile.length()));
        assertEquals(0x1F600, smile.codePointAt(0));
        assertEquals("", parse("\"\""));
    }

    @Test
    public void nestedStructuresKeepOrderAndLastDuplicateWins() throws Exception {
        Object v = parse("{\"b\": [1, {\"c\": []}, {}], \"a\": null, \"b\": [2.5]}");
        Map<?, ?> m = (Map<?, ?>) v;
        assertEquals(Arrays.asList("b", "a"), new ArrayList<Object>(m.keySet()));
        assertEquals(Arrays.asList(2.5), m.get("b"));
        assertTrue(m.containsKey("a"));
        assertNull(m.get("a"));
    }

    @Test
    public void roundTripsCompactAndPretty() throws Exception {
        Map<String, Object> doc = new LinkedHashMap<String, Object>();
        doc.put("s", "quote \" backslash \\ newline \n tab \t bell \u0007 \u00e9 \ud83d\ude00");
        doc.put("i", 7L);
        doc.put("big", new BigInteger("-123456789012345678901234567890"));
        doc.put("f", 0.1);
        doc.put("tiny", 1.0e-300);
        doc.put("huge", 1.7976931348623157e308);
        doc.put("t", true);
        doc.put("n", null);
        List<Object> list = new ArrayList<Object>();
        list.add(new LinkedHashMap<String, Object>());
        list.add(new ArrayList<Object>());
        list.add(Arrays.asList(1L, 2L));
        doc.put("list", list);
        assertEquals(doc, parse(PyJson.write(doc)));
        assertEquals(doc, parse(PyJson.writePretty(doc)));
    }

    @Test
    public void writerMatchesPythonsLayout() {
        Map<String, Object> doc = new LinkedHashMap<String, Object>();
        doc.put("a", Arrays.asList(1L, "x"));
        doc.put("b", new LinkedHashMap<String, Object>());
        doc.put("c", "\u00e9");
        // json.dumps(doc) and json.dumps(doc, indent=2) in Python:
        assertEquals("{\"a\": [1, \"x\"], \"b\": {}, \"c\": \"\\u00e9\"}", PyJson.write(doc));
        assertEquals("{\n  \"a\": [\n    1,\n    \"x\"\n  ],\n  \"b\": {},\n  \"c\": \"\\u00e9\"\n}", PyJson.writePretty(doc));
    }

    @Test
    public void writerRefusesWhatJsonCannotHold() {
        assertThrows(IllegalArgumentException.class, () -> PyJson.write(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> PyJson.write(Double.POSITIVE_INFINITY));
        Map<Object, Object> m = new LinkedHashMap<Object, Object>();
        m.put(1L, "x");
        assertThrows(IllegalArgumentException.class, () -> PyJson.write(m));
        assertThrows(IllegalArgumentException.class, () -> PyJson.write(new Object()));
    }

    private static void assertMalformed(String text, String expected) {
        JSONException e = assertThrows(JSONException.class, () -> PyJson.parse(text));
        assertTrue("'" + e.getMessage() + "' should mention '" + expected + "'", e.getMessage().contains(expected));
    }

    @Test
    public void malformedInputsAreRejectedWithWhereAndWhat() {
        assertMalformed("", "expecting a value at line 1 column 1 (char 0)");
        assertMalformed("   ", "expecting a value");
        assertMalformed("{\"a\": 1,}", "expecting a property name in double quotes at line 1 column 9");
        assertMalformed("{\"a\" 1}", "expecting ':'");
        assertMalformed("{\"a\": 1 \"b\": 2}", "expecting ',' or '}'");
        assertMalformed("{\"a\": 1", "expecting ',' or '}' in an object at line 1 column 8 (char 7)");
        assertMalformed("[1, 2", "expecting ',' or ']'");
        assertMalformed("[1; 2]", "expecting ',' or ']'");
        assertMalformed("[1,]", "expecting a value, found ']'");
        assertMalformed("[,]", "expecting a value, found ',' at line 1 column 2 (char 1)");
        assertMalformed("{'a': 1}", "expecting a property name");
        assertMalformed("{a: 1}", "expecting a property name");
        assertMalformed("{\"a\" = 1}", "expecting ':'");
        assertMalformed("'a'", "expecting a value, found ''a''");
        assertMalformed("abc", "expecting a value, found 'abc'");
        assertMalformed("\"abc", "unterminated string");
        assertMalformed("\"\\u12g4\"", "invalid escape sequence: 12g4");
        assertMalformed("\"\\u12\"", "unterminated escape sequence");
        assertMalformed("\"bell\u0007\"", "invalid control character U+0007 at line 1 column 6 (char 5)");
        assertMalformed("[1]\u0000", "invalid control character U+0000");
        assertMalformed("01", "expecting a value, found '01'");
        assertMalformed("0x10", "expecting a value, found '0x10'");
        assertMalformed("1.", "expecting a value, found '1.'");
        assertMalformed("1e", "expecting a value");
        assertMalformed("-", "expecting a value");
        assertMalformed("+1", "expecting a value");
        assertMalformed(".5", "expecting a value");
        assertMalformed("NaN", "expecting a value, found 'NaN'");
        assertMalformed("[Infinity]", "expecting a value, found 'Infinity'");
        assertMalformed("-Infinity", "expecting a value");
        assertMalformed("1e400", "number 1e400 is too large for a double at line 1 column 1");
        assertMalformed("[1, 1e400]", "too large for a double at line 1 column 5 (char 4)");
        assertMalformed("tru", "expecting a value");
        assertMalformed("nul", "expecting a value");
        assertMalformed("True", "expecting a value");
        assertMalformed("{} {}", "extra data after the JSON value at line 1 column 4 (char 3)");
        assertMalformed("\ufeff{}", "U+FEFF");
        assertMalformed("{\n  \"a\": [1,\n  ?]}", "expecting a value, found '?' at line 3 column 3");
    }

    /** What org.json's tokener still lets through: documented here so that a change shows. */
    @Test
    public void orgJsonLeniencyThatRemains() throws Exception {
        assertEquals("ax", parse("\"a\\x\""));
        assertEquals("tab\there", parse("\"tab\there\""));
        assertEquals(Arrays.asList(1L, 2L), parse("[1, /* two */ 2] // done"));
        assertEquals(Arrays.asList(1L), parse("# comment\n[1]"));
    }

    @Test
    public void errorsAreOneLineEvenForLongInputs() {
        StringBuilder sb = new StringBuilder("{\"models\": [\n");
        for (int i = 0; i < 1000; i++) {
            sb.append("  {\"key\": \"k").append(i).append("\", \"path\": \"m.tflite\"},\n");
        }
        sb.append("]}");
        JSONException e = assertThrows(JSONException.class, () -> PyJson.parse(sb.toString()));
        assertEquals("expecting a value, found ']' at line 1002 column 1 (char " + (sb.length() - 2) + ")", e.getMessage());
        JSONException u = assertThrows(JSONException.class, () -> PyJson.parse("[\n\"abc" + sb.toString().replace("\"", "")));
        assertTrue(u.getMessage(), u.getMessage().startsWith("unterminated string at line "));
        assertTrue(u.getMessage(), u.getMessage().indexOf('\n') < 0 && u.getMessage().length() < 80);
    }

    @Test
    public void deepNestingIsAnErrorNotAStackOverflow() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 100000; i++) {
            sb.append('[');
        }
        assertMalformed(sb.toString(), "nesting deeper than");
        StringBuilder ok = new StringBuilder();
        for (int i = 0; i < 500; i++) {
            ok.append('[');
        }
        for (int i = 0; i < 500; i++) {
            ok.append(']');
        }
        try {
            PyJson.parse(ok.toString());
        } catch (JSONException e) {
            throw new AssertionError("500 levels are fine", e);
        }
    }
}
