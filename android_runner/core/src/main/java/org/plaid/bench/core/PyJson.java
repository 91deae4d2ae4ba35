package org.plaid.bench.core;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.json.JSONException;
import org.json.JSONTokener;

/**
 * JSON in the value model of Python's {@code json} module, so that a plan means the same thing
 * here as in device_bench. The lexing is org.json's {@link JSONTokener} (part of Android; Debian's
 * libandroid-json-org-java on the host): whitespace, string escapes and literal tokens. What this
 * class adds on top is what org.json does differently from Python:
 *
 * <ul>
 *   <li>object: {@code LinkedHashMap<String, Object>}, key order kept, a repeated key keeps the
 *       last value. ({@code JSONObject} keeps order on Android but not in Debian's jar, so
 *       host tests could not see the order the phone writes.)
 *   <li>array: {@code ArrayList<Object>}; {@code [1,]} and {@code [,]} are errors (org.json reads
 *       them as {@code [1, null]} and {@code [null, null]}).
 *   <li>number without fraction or exponent: {@code Long}, or {@code BigInteger} when it does not
 *       fit (Python's int; org.json turns those into doubles); any other number: {@code Double}.
 *       NaN, Infinity, hex, octal and numbers beyond a double are errors, as in RFC 8259.
 *   <li>string: {@code String}; true/false: {@code Boolean}; null: {@code null}. Unquoted or
 *       single-quoted strings, which org.json accepts, are errors.
 *   <li>writing: Python's {@code json.dumps} layout and number forms ({@code 1.0} stays
 *       {@code 1.0}; org.json writes {@code 1}), ASCII only, {@code /} not escaped.
 * </ul>
 *
 * Malformed input raises {@link JSONException} naming what was expected and where (line, column,
 * char offset). Still lenient, as org.json is: comments ({@code //}, {@code #}, {@code /* *}{@code /}),
 * unknown escapes ({@code "\x"} reads as {@code "x"}) and raw tabs or newlines inside strings.
 */
public final class PyJson {
    private static final int MAX_DEPTH = 512;
    /** Where a literal token (number, true, false, null) ends: JSONTokener's own set, and '"'. */
    private static final String DELIMITERS = "{}[]/\\:,=;# \t\f\"";
    private static final Pattern NUMBER = Pattern.compile("-?(?:0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");
    /** The form of org.json's syntax errors: message, then {@code JSONTokener.toString()}. */
    private static final Pattern TOKENER_ERROR = Pattern.compile("(?s)(.*?) at character (\\d+) of .*");

    private PyJson() {}

    /** Parses one JSON document (surrounding whitespace allowed, nothing else after it). */
    public static Object parse(String text) throws JSONException {
        Reader r = new Reader(text);
        try {
            r.checkCharacters();
            Object value = r.value(0);
            char c = r.tok.nextClean();
            if (c != 0) {
                throw r.error("extra data after the JSON value", r.at(c));
            }
            return value;
        } catch (JSONException e) {
            throw r.located(e);
        }
    }

    /** One line, with Python's default separators {@code ", "} and {@code ": "}. */
    public static String write(Object value) {
        StringBuilder sb = new StringBuilder();
        writeValue(sb, value, -1, 0);
        return sb.toString();
    }

    /** Indented by two spaces per level, like Python's {@code json.dumps(doc, indent=2)}. */
    public static String writePretty(Object value) {
        StringBuilder sb = new StringBuilder();
        writeValue(sb, value, 2, 0);
        return sb.toString();
    }

    // ---------------------------------------------------------------- reader

    private static final class Reader {
        final String text;
        final JSONTokener tok;

        Reader(String text) {
            this.text = text;
            this.tok = new JSONTokener(text);
        }

        /**
         * The tokener's position: the offset of the next character. JSONTokener keeps it private
         * and names it in {@code toString()}, which copies the whole input: call it for errors only.
         */
        int pos() {
            Matcher m = TOKENER_ERROR.matcher(tok.toString());
            return m.matches() ? Integer.parseInt(m.group(2)) : 0;
        }

        /** Offset of {@code c}, the character nextClean() just returned ('\0': the end). */
        int at(char c) {
            return c == 0 ? text.length() : pos() - 1;
        }

        JSONException error(String what, int at) {
            int line = 1;
            int lineStart = 0;
            for (int i = 0; i < at && i < text.length(); i++) {
                if (text.charAt(i) == '\n') {
                    line++;
                    lineStart = i + 1;
                }
            }
            return new JSONException(what + " at line " + line + " column " + (at - lineStart + 1) + " (char " + at + ")");
        }

        /** org.json's own errors ("Unterminated string at character 4 of <input>") in this class's form. */
        JSONException located(JSONException e) {
            Matcher m = e.getMessage() == null ? null : TOKENER_ERROR.matcher(e.getMessage());
            if (m == null || !m.matches()) {
                return e;
            }
            String what = m.group(1);
            what = what.isEmpty() ? what : Character.toLowerCase(what.charAt(0)) + what.substring(1);
            return error(what, Integer.parseInt(m.group(2)));
        }

        /**
         * A byte order mark, and control characters other than whitespace, are errors wherever
         * they are (JSONTokener drops a BOM and reads control characters into strings). A NUL
         * therefore never reaches nextClean(), whose '\0' then always means the end.
         */
        void checkCharacters() throws JSONException {
            for (int i = 0; i < text.length(); i++) {
                char c = text.charAt(i);
                if (c == '\ufeff') {
                    throw error("unexpected byte order mark U+FEFF", i);
                }
                if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
                    throw error("invalid control character " + describe(c), i);
                }
            }
        }

        Object value(int depth) throws JSONException {
            char c = tok.nextClean();
            switch (c) {
                case 0:
                    throw error("expecting a value", text.length());
                case '{':
                    return object(depth + 1);
                case '[':
                    return array(depth + 1);
                case '"':
                    return string();
                default:
                    tok.back();
                    return literal();
            }
        }

        /** The string after an opening '"'. */
        String string() throws JSONException {
            try {
                return tok.nextString('"');
            } catch (NumberFormatException e) {
                // Older JSONTokeners (Debian's among them) let a bad "\\u12g4" escape throw this.
                int after = pos();
                String hex = after >= 4 ? text.substring(after - 4, after) : "";
                throw error("invalid escape sequence: " + hex, Math.max(0, after - 6));
            }
        }

        Object literal() throws JSONException {
            String token = tok.nextTo(DELIMITERS);
            if (token.equals("true")) {
                return Boolean.TRUE;
            }
            if (token.equals("false")) {
                return Boolean.FALSE;
            }
            if (token.equals("null")) {
                return null;
            }
            Matcher m = NUMBER.matcher(token);
            if (!m.matches()) {
                int start = Math.max(0, pos() - token.length());
                String found = token.isEmpty() && start < text.length() ? describe(text.charAt(start))
                        : "'" + (token.length() > 40 ? token.substring(0, 40) + "..." : token) + "'";
                throw error("expecting a value, found " + found, start);
            }
            if (m.group(1) == null && m.group(2) == null) {
                BigInteger big = new BigInteger(token);
                return big.bitLength() < 64 ? (Object) Long.valueOf(big.longValue()) : big;
            }
            double d = Double.parseDouble(token);
            if (Double.isInfinite(d)) {
                throw error("number " + token + " is too large for a double", pos() - token.length());
            }
            return d;
        }

        Map<String, Object> object(int depth) throws JSONException {
            checkDepth(depth);
            Map<String, Object> map = new LinkedHashMap<String, Object>();
            char c = tok.nextClean();
            if (c == '}') {
                return map;
            }
            while (true) {
                if (c != '"') {
                    throw error("expecting a property name in double quotes", at(c));
                }
                String key = string();
                c = tok.nextClean();
                if (c != ':') {
                    throw error("expecting ':' after a property name", at(c));
                }
                map.put(key, value(depth));
                c = tok.nextClean();
                if (c == '}') {
                    return map;
                }
                if (c != ',') {
                    throw error("expecting ',' or '}' in an object", at(c));
                }
                c = tok.nextClean();
            }
        }

        List<Object> array(int depth) throws JSONException {
            checkDepth(depth);
            List<Object> list = new ArrayList<Object>();
            char c = tok.nextClean();
            if (c == ']') {
                return list;
            }
            if (c != 0) {
                tok.back();
            }
            while (true) {
                list.add(value(depth));
                c = tok.nextClean();
                if (c == ']') {
                    return list;
                }
                if (c != ',') {
                    throw error("expecting ',' or ']' in an array", at(c));
                }
            }
        }

        void checkDepth(int depth) throws JSONException {
            if (depth > MAX_DEPTH) {
                throw error("nesting deeper than " + MAX_DEPTH + " levels", pos() - 1);
            }
        }

        static String describe(char c) {
            if (c >= 0x20 && c < 0x7f) {
                return "'" + c + "'";
            }
            return String.format("U+%04X", (int) c);
        }
    }

    // ---------------------------------------------------------------- writer

    private static void newline(StringBuilder sb, int indent, int level) {
        sb.append('\n');
        for (int i = 0; i < indent * level; i++) {
            sb.append(' ');
        }
    }

    private static void writeValue(StringBuilder sb, Object v, int indent, int level) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof String) {
            writeString(sb, (String) v);
        } else if (v instanceof Boolean) {
            sb.append(((Boolean) v).booleanValue() ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                throw new IllegalArgumentException("JSON cannot hold " + d);
            }
            sb.append(Double.toString(d));
        } else if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte
                || v instanceof BigInteger) {
            sb.append(v.toString());
        } else if (v instanceof Map) {
            Map<?, ?> map = (Map<?, ?>) v;
            if (map.isEmpty()) {
                sb.append("{}");
                return;
            }
            sb.append('{');
            Iterator<? extends Map.Entry<?, ?>> it = map.entrySet().iterator();
            while (it.hasNext()) {
                Map.Entry<?, ?> e = it.next();
                if (!(e.getKey() instanceof String)) {
                    throw new IllegalArgumentException("JSON object keys must be strings, got " + e.getKey());
                }
                if (indent >= 0) {
                    newline(sb, indent, level + 1);
                }
                writeString(sb, (String) e.getKey());
                sb.append(": ");
                writeValue(sb, e.getValue(), indent, level + 1);
                if (it.hasNext()) {
                    sb.append(indent >= 0 ? "," : ", ");
                }
            }
            if (indent >= 0) {
                newline(sb, indent, level);
            }
            sb.append('}');
        } else if (v instanceof List) {
            List<?> list = (List<?>) v;
            if (list.isEmpty()) {
                sb.append("[]");
                return;
            }
            sb.append('[');
            for (int i = 0; i < list.size(); i++) {
                if (indent >= 0) {
                    newline(sb, indent, level + 1);
                }
                writeValue(sb, list.get(i), indent, level + 1);
                if (i + 1 < list.size()) {
                    sb.append(indent >= 0 ? "," : ", ");
                }
            }
            if (indent >= 0) {
                newline(sb, indent, level);
            }
            sb.append(']');
        } else {
            throw new IllegalArgumentException("no JSON form for " + v.getClass().getName());
        }
    }

    /** ASCII-only output like Python's default ensure_ascii=True. */
    private static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                case '\b': sb.append("\\b"); break;
                case '\f': sb.append("\\f"); break;
                default:
                    if (c < 0x20 || c > 0x7e) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
            }
        }
        sb.append('"');
    }
}
