package org.plaid.bench;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.plaid.bench.core.Model;
import org.plaid.bench.core.ModelLoader;
import org.plaid.bench.core.RandomInputs;
import org.plaid.bench.core.SelfTimed;
import org.plaid.bench.core.Settings;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;
import org.tensorflow.lite.gpu.CompatibilityList;
import org.tensorflow.lite.gpu.GpuDelegate;

/**
 * Loads a .tflite file into the LiteRT (TensorFlow Lite) interpreter under a plan's settings:
 * {@code threads} → setNumThreads; {@code delegate} "xnnpack" / "none" → setUseXNNPACK(true /
 * false); "gpu" → the GPU delegate (an error row when this device's GPU is not supported).
 * Inputs are random data of each input tensor's type and shape, made once per model (seed 0,
 * like device_bench). CPU affinity ({@code cpus}) cannot be set from Java: see README.
 */
final class TfliteModelLoader implements ModelLoader {
    @Override
    public Model load(File file, Settings settings) throws Exception {
        Interpreter.Options options = new Interpreter.Options().setNumThreads(settings.threads);
        GpuDelegate gpu = null;
        switch (settings.delegate) {
            case "none":
                options.setUseXNNPACK(false);
                break;
            case "gpu":
                gpu = newGpuDelegate();
                options.addDelegate(gpu);
                // Ops the GPU delegate does not take run on the CPU, with XNNPACK.
                options.setUseXNNPACK(true);
                break;
            default: // "xnnpack"
                options.setUseXNNPACK(true);
        }
        Interpreter interpreter = null;
        try {
            interpreter = new Interpreter(file, options);
            interpreter.allocateTensors();
            Random rng = new Random(0);
            Object[] inputs = new Object[interpreter.getInputTensorCount()];
            for (int i = 0; i < inputs.length; i++) {
                Tensor t = interpreter.getInputTensor(i);
                ByteBuffer buf = ByteBuffer.allocateDirect(t.numBytes()).order(ByteOrder.nativeOrder());
                RandomInputs.fill(buf, t.dataType().name(), rng);
                buf.rewind();
                inputs[i] = buf;
            }
            Map<Integer, Object> outputs = new HashMap<>();
            for (int i = 0; i < interpreter.getOutputTensorCount(); i++) {
                Tensor t = interpreter.getOutputTensor(i);
                outputs.put(i, ByteBuffer.allocateDirect(t.numBytes()).order(ByteOrder.nativeOrder()));
            }
            return new TfliteModel(interpreter, gpu, inputs, outputs);
        } catch (Exception | LinkageError e) {
            if (interpreter != null) {
                interpreter.close();
            }
            if (gpu != null) {
                gpu.close();
            }
            throw e;
        }
    }

    private static GpuDelegate newGpuDelegate() {
        CompatibilityList compat = new CompatibilityList();
        try {
            if (!compat.isDelegateSupportedOnThisDevice()) {
                throw new IllegalStateException("the GPU delegate does not support this device's GPU");
            }
            return new GpuDelegate(compat.getBestOptionsForThisDevice());
        } finally {
            compat.close();
        }
    }

    /** One interpreter with its inputs set; reports the native invoke time (without the copies). */
    private static final class TfliteModel implements Model, SelfTimed {
        private final Interpreter interpreter;
        private final GpuDelegate gpu;
        private final Object[] inputs;
        private final Map<Integer, Object> outputs;

        TfliteModel(Interpreter interpreter, GpuDelegate gpu, Object[] inputs, Map<Integer, Object> outputs) {
            this.interpreter = interpreter;
            this.gpu = gpu;
            this.inputs = inputs;
            this.outputs = outputs;
        }

        @Override
        public void invoke() {
            // Copying in and out moves the buffers' positions; start each run from the beginning.
            for (Object in : inputs) {
                ((ByteBuffer) in).rewind();
            }
            for (Object out : outputs.values()) {
                ((ByteBuffer) out).rewind();
            }
            interpreter.runForMultipleInputsOutputs(inputs, outputs);
        }

        @Override
        public long lastInvokeNanos() {
            Long nanos = interpreter.getLastNativeInferenceDurationNanoseconds();
            return nanos == null ? -1L : nanos;
        }

        @Override
        public void close() {
            interpreter.close();
            if (gpu != null) {
                gpu.close(); // after the interpreter that uses it
            }
        }
    }
}
