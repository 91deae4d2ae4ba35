package org.plaid.bench.core;

import java.nio.ByteBuffer;
import java.util.Random;

/**
 * Random input data for an input tensor, like device_bench's load_interpreter: floats from a
 * standard normal distribution, integers uniform in [max(type min, -128), min(type max, 127)],
 * booleans 0 or 1. The buffer is filled from its position to its limit in its own byte order
 * (the interpreter wants native order).
 */
public final class RandomInputs {
    private RandomInputs() {}

    /**
     * @param type the tensor type as TFLite's Java DataType names it (FLOAT32, INT8, UINT8, ...)
     */
    public static void fill(ByteBuffer buf, String type, Random rng) {
        int size = elementSize(type);
        if (buf.remaining() % size != 0) {
            throw new IllegalArgumentException(buf.remaining() + " bytes are not a whole number of " + type + " values");
        }
        while (buf.hasRemaining()) {
            switch (type) {
                case "FLOAT32":
                    buf.putFloat((float) rng.nextGaussian());
                    break;
                case "FLOAT16":
                    buf.putShort(toHalf((float) rng.nextGaussian()));
                    break;
                case "FLOAT64":
                    buf.putDouble(rng.nextGaussian());
                    break;
                case "INT8":
                    buf.put((byte) (rng.nextInt(256) - 128));
                    break;
                case "UINT8":
                    buf.put((byte) rng.nextInt(128));
                    break;
                case "BOOL":
                    buf.put((byte) rng.nextInt(2));
                    break;
                case "INT16":
                    buf.putShort((short) (rng.nextInt(256) - 128));
                    break;
                case "UINT16":
                    buf.putShort((short) rng.nextInt(128));
                    break;
                case "INT32":
                    buf.putInt(rng.nextInt(256) - 128);
                    break;
                case "UINT32":
                    buf.putInt(rng.nextInt(128));
                    break;
                case "INT64":
                    buf.putLong(rng.nextInt(256) - 128);
                    break;
                default:
                    throw new IllegalStateException(type);
            }
        }
    }

    /** Bytes per value; an unsupported type (STRING, ...) is an error naming the type. */
    public static int elementSize(String type) {
        switch (type) {
            case "INT8":
            case "UINT8":
            case "BOOL":
                return 1;
            case "FLOAT16":
            case "INT16":
            case "UINT16":
                return 2;
            case "FLOAT32":
            case "INT32":
            case "UINT32":
                return 4;
            case "FLOAT64":
            case "INT64":
                return 8;
            default:
                throw new IllegalArgumentException("input type " + type + " is not supported for random inputs");
        }
    }

    /** IEEE 754 half precision, rounded to nearest even (Float.floatToFloat16 is JDK 20+). */
    static short toHalf(float f) {
        int bits = Float.floatToIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exp = (bits >>> 23) & 0xff;
        int mant = bits & 0x7fffff;
        if (exp == 0xff) {
            return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 : 0));
        }
        int e = exp - 127 + 15;
        if (e >= 0x1f) {
            return (short) (sign | 0x7c00);
        }
        if (e <= 0) {
            if (e < -10) {
                return (short) sign;
            }
            mant |= 0x800000;
            int shift = 14 - e;
            int half = mant >> shift;
            int rest = mant & ((1 << shift) - 1);
            int halfway = 1 << (shift - 1);
            if (rest > halfway || (rest == halfway && (half & 1) != 0)) {
                half++;
            }
            return (short) (sign | half);
        }
        int half = (e << 10) | (mant >> 13);
        int rest = mant & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (half & 1) != 0)) {
            half++; // may carry into the exponent, which is the right rounding
        }
        return (short) (sign | half);
    }
}
