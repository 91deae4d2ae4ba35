package org.plaid.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.Test;

public class RandomInputsTest {
    private static ByteBuffer filled(String type, int bytes, long seed) {
        ByteBuffer buf = ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
        RandomInputs.fill(buf, type, new Random(seed));
        assertEquals(0, buf.remaining());
        buf.rewind();
        return buf;
    }

    @Test
    public void floatsAreStandardNormalAndDeterministic() {
        ByteBuffer a = filled("FLOAT32", 4 * 10000, 0);
        double sum = 0;
        double sq = 0;
        for (int i = 0; i < 10000; i++) {
            float v = a.getFloat();
            sum += v;
            sq += v * v;
        }
        assertEquals(0.0, sum / 10000, 0.05);
        assertEquals(1.0, sq / 10000, 0.05);
        assertEquals(filled("FLOAT32", 64, 7), filled("FLOAT32", 64, 7));
        assertNotEquals(filled("FLOAT32", 64, 7), filled("FLOAT32", 64, 8));
    }

    @Test
    public void integersStayInDeviceBenchsRanges() {
        int[] seen = new int[2];
        ByteBuffer i8 = filled("INT8", 5000, 1);
        ByteBuffer u8 = filled("UINT8", 5000, 1);
        for (int i = 0; i < 5000; i++) {
            byte s = i8.get();
            seen[0] = Math.min(seen[0], s);
            int u = u8.get() & 0xff;
            assertTrue(u <= 127);
            seen[1] = Math.max(seen[1], u);
        }
        assertEquals(-128, seen[0]);
        assertEquals(127, seen[1]);
        ByteBuffer i32 = filled("INT32", 4 * 1000, 2);
        ByteBuffer i64 = filled("INT64", 8 * 1000, 2);
        ByteBuffer i16 = filled("INT16", 2 * 1000, 2);
        for (int i = 0; i < 1000; i++) {
            int v = i32.getInt();
            assertTrue(v >= -128 && v <= 127);
            long w = i64.getLong();
            assertTrue(w >= -128 && w <= 127);
            short h = i16.getShort();
            assertTrue(h >= -128 && h <= 127);
        }
        ByteBuffer b = filled("BOOL", 100, 3);
        for (int i = 0; i < 100; i++) {
            byte v = b.get();
            assertTrue(v == 0 || v == 1);
        }
    }

    @Test
    public void unsupportedTypesAndRaggedBuffersAreErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RandomInputs.fill(ByteBuffer.allocate(8), "STRING", new Random()));
        assertEquals("input type STRING is not supported for random inputs", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RandomInputs.fill(ByteBuffer.allocate(6), "FLOAT32", new Random()));
    }

    @Test
    public void halfPrecision() {
        assertEquals(0x3c00, RandomInputs.toHalf(1.0f) & 0xffff);
        assertEquals(0xc000, RandomInputs.toHalf(-2.0f) & 0xffff);
        assertEquals(0x2e66, RandomInputs.toHalf(0.1f) & 0xffff);
        assertEquals(0x7bff, RandomInputs.toHalf(65504f) & 0xffff);
        assertEquals(0x7c00, RandomInputs.toHalf(65520f) & 0xffff); // rounds up to infinity
        assertEquals(0x0001, RandomInputs.toHalf((float) Math.pow(2, -24)) & 0xffff);
        assertEquals(0x0000, RandomInputs.toHalf(1e-8f) & 0xffff);
        assertEquals(0x8000, RandomInputs.toHalf(-0.0f) & 0xffff);
        assertEquals(0x7e00, RandomInputs.toHalf(Float.NaN) & 0xffff);
        assertEquals(0x3555, RandomInputs.toHalf(1f / 3f) & 0xffff);
    }
}
