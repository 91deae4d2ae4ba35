"""Stand-in for TFLite's `benchmark_model` binary: times the model with the real TFLite
interpreter (ai_edge_litert, through device_bench.runner.load_interpreter) and prints
what the real tool prints.

Output format followed (TensorFlow sources, read for this purpose, not copied):
- tensorflow/lite/tools/benchmark/benchmark_main.cc: "STARTING!" first, "Benchmarking
  failed." and exit status 1 when Run() fails;
- tensorflow/lite/tools/benchmark/benchmark_model.cc: DefaultParams (num_runs=50,
  min_secs=1, max_secs=150, warmup_runs=1, warmup_min_secs=0.5, ...), LogParams
  ("Log parameter values verbosely: [0]", then "<Description>: [<value>]" for each flag set),
  Run() ("The input model file size (MB): X", "Initialized session in Xms.", a warm-up and
  a regular loop, each announced by "Running benchmark for at least N iterations and at
  least S seconds but terminate if exceeding M seconds." and ending with the Stat line and
  an empty line), BenchmarkLoggingListener::OnBenchmarkEnd ("Inference timings in us:
  Init: X, First inference: Y, Warmup (avg): Z, Inference (avg): W", the memory note and
  "Memory footprint delta from the start of the tool (MB): init=X overall=Y", the peak
  memory lines with --report_peak_memory_footprint);
- tensorflow/lite/tools/benchmark/benchmark_tflite_model.cc: LogParams (Graph always),
  ValidateParams ("Please specify the name of your TF Lite input file with --graph"),
  LoadModel ("Loaded model X" / "Failed to mmap model X"), "Failed to allocate tensors!",
  the "Explicitly applied XNNPACK delegate ..." line, use_xnnpack=false -> no default delegates;
- tensorflow/lite/tools/delegates/default_execution_provider.cc and
  xnnpack_delegate_provider.cc: "#threads used for CPU inference", "Use xnnpack";
- tensorflow/lite/tools/tool_params.h LOG_TOOL_PARAM: "<description>: [<value>]" (bools as 0/1);
- tensorflow/lite/tools/command_line_flags.cc: only "--name=value" is parsed, "Failed to
  parse flag 'X' against argv 'Y'", then usage; unknown arguments -> "Unconsumed cmdline
  flags: ..." (a warning, the run goes on);
- tensorflow/lite/tools/logging.h: "INFO: "/"WARN: " lines on stdout, "ERROR: " on stderr;
- tensorflow/core/util/stats_calculator.h Stat::OutputToStream: "count=N first=F curr=C
  min=m max=M avg=A std=S" (std: population std, truncated to an integer), "count=N curr=C"
  (+ "(all same)" when N > 1) when all values are equal; doubles as C++ ostream prints them
  (6 significant digits, %g).
The emulator is a platform without GPU/NNAPI/Hexagon: those flags log the real tool's
"... acceleration is unsupported on this platform." warning and run on the CPU.
Reported times are the measured ones multiplied by ``device.slowdown`` (throttling).
"""

from __future__ import annotations

import math
import time

from .protocol import StreamClosed

# (flag, type, default, LogParams description or None), in LogParams order
_FLAGS = [
    ("num_runs", int, 50, "Min num runs"),
    ("min_secs", float, 1.0, "Min runs duration (seconds)"),
    ("max_secs", float, 150.0, "Max runs duration (seconds)"),
    ("run_delay", float, -1.0, "Inter-run delay (seconds)"),
    ("run_frequency", float, -1.0, "Number of prorated runs per second"),
    ("num_threads", int, -1, "Num threads"),
    ("use_caching", bool, False, "Use caching"),
    ("benchmark_name", str, "", "Benchmark name"),
    ("output_prefix", str, "", "Output prefix"),
    ("warmup_runs", int, 1, "Min warmup runs"),
    ("warmup_min_secs", float, 0.5, "Min warmup runs duration (seconds)"),
    ("verbose", bool, False, None),
    ("dry_run", bool, False, "Run w/o invoking kernels"),
    ("report_peak_memory_footprint", bool, False, "Report the peak memory footprint"),
    ("memory_footprint_check_interval_ms", int, 50, "Memory footprint check interval (ms)"),
    ("graph", str, "", "Graph"),
    ("input_layer", str, "", "Input layers"),
    ("input_layer_shape", str, "", "Input shapes"),
    ("input_layer_value_range", str, "", "Input value ranges"),
    ("input_layer_value_files", str, "", "Input value files"),
    ("allow_fp16", bool, False, "Allow fp16"),
    ("require_full_delegation", bool, False, "Require full delegation"),
    ("enable_op_profiling", bool, False, "Enable op profiling"),
    ("max_profiling_buffer_entries", int, 1024, "Max profiling buffer entries"),
    ("profiling_output_csv_file", str, "", "CSV File to export profiling data to"),
    ("print_preinvoke_state", bool, False, "Print pre-invoke interpreter state"),
    ("print_postinvoke_state", bool, False, "Print post-invoke interpreter state"),
    ("help", bool, False, "print out all supported flags"),
    ("num_threads", int, -1, "#threads used for CPU inference"),
    ("max_delegated_partitions", int, 0, "Max number of delegated partitions"),
    ("min_nodes_per_partition", int, 0, "Min nodes per partition"),
    ("delegate_serialize_dir", str, "", "Directory for delegate serialization"),
    ("delegate_serialize_token", str, "", "Model-specific token/key for delegate serialization."),
    ("use_gpu", bool, False, "Use gpu"),
    ("gpu_precision_loss_allowed", bool, True, "Allow lower precision in gpu"),
    ("gpu_experimental_enable_quant", bool, True, "Enable running quant models in gpu"),
    ("gpu_backend", str, "", "GPU backend"),
    ("use_nnapi", bool, False, "Use NNAPI"),
    ("nnapi_accelerator_name", str, "", "NNAPI accelerator"),
    ("disable_nnapi_cpu", bool, True, "Disable NNAPI cpu"),
    ("use_hexagon", bool, False, "Use Hexagon"),
    ("use_xnnpack", bool, False, "Use xnnpack"),
    ("xnnpack_force_fp16", bool, False, "xnnpack_force_fp16"),
    ("external_delegate_path", str, "", "External delegate path"),
    ("external_delegate_options", str, "", "External delegate options"),
]
_TYPE_NAMES = {int: "int32", float: "float", bool: "bool", str: "string"}
_UNSUPPORTED = {"use_gpu": "GPU", "use_nnapi": "NNAPI", "use_hexagon": "Hexagon"}


def g(x: float) -> str:
    """A double as C++'s default ostream formatting prints it."""
    return f"{x:.6g}"


def _value(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return g(v) if isinstance(v, float) else str(v)


def _convert(typ, text: str):
    if typ is bool:
        if text not in ("true", "false", "0", "1"):
            raise ValueError(text)
        return text in ("true", "1")
    if typ is int:
        v = int(text)
        if not -2**31 <= v < 2**31:
            raise ValueError(text)
        return v
    return typ(text)


def parse_flags(args: list[str]):
    """(params, names set on the command line, unconsumed args, error lines)."""
    params = {name: default for name, _, default, _ in _FLAGS}
    given, used, errors = set(), set(), []
    for name, typ, _, _ in _FLAGS:
        if name in given:
            continue
        for i, arg in enumerate(args):
            if i in used or not arg.startswith(f"--{name}="):
                continue
            used.add(i)
            try:
                params[name] = _convert(typ, arg[len(name) + 3:])
                given.add(name)
            except ValueError:
                errors.append(f"Failed to parse flag '{name}' against argv '{arg}'")
            break
    unconsumed = [a for i, a in enumerate(args) if i not in used]
    return params, given, unconsumed, errors


def _usage(argv0: str) -> str:
    seen, lines = set(), [f"usage: {argv0} <flags>", "Flags:"]
    for name, typ, default, _ in _FLAGS:
        if name not in seen:
            seen.add(name)
            shown = ("true" if default else "false") if typ is bool else _value(default)
            lines.append(f"\t--{name}={shown}\t{_TYPE_NAMES[typ]}\toptional")
    return "\n".join(lines)


def stat_line(values: list[int]) -> str:
    n = len(values)
    if n == 0:
        return "count=0"
    lo, hi = min(values), max(values)
    if lo == hi:
        return f"count={n} curr={values[-1]}" + ("(all same)" if n > 1 else "")
    avg = sum(values) / n
    std = int(math.sqrt(max(0.0, sum(float(v) * v for v in values) / n - avg * avg)))
    return f"count={n} first={values[0]} curr={values[-1]} min={lo} max={hi} avg={g(avg)} std={std}"


def _avg(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def benchmark_model(ctx, argv: list[str]) -> int:
    dev = ctx.device

    def info(s):
        ctx.out(f"INFO: {s}\n")

    def error(s):
        ctx.err(f"ERROR: {s}\n")

    def failed():
        error("Benchmarking failed.")
        return 1

    info("STARTING!")
    params, given, unconsumed, errors = parse_flags(argv[1:])
    if errors or params["help"] or argv[1:2] == ["--help"]:
        for e in errors:
            error(e)
        error(_usage(argv[0]))
        return failed()
    if unconsumed:
        ctx.out(f"WARN: Unconsumed cmdline flags: {' '.join(unconsumed)}\n")
    graph = params["graph"]
    if not graph:
        error("Please specify the name of your TF Lite input file with --graph")
        return failed()
    if params["report_peak_memory_footprint"] and params["memory_footprint_check_interval_ms"] <= 0:
        ctx.out(f"WARN: --memory_footprint_check_interval_ms is set to "
                f"{params['memory_footprint_check_interval_ms']} (ms), This value is invalid, and it will be set "
                "to the default value 50 (ms).\n")
    verbose = params["verbose"]
    info(f"Log parameter values verbosely: [{_value(verbose)}]")
    for name, _, _, label in _FLAGS:
        if label and (verbose or name in given or name == "graph"):
            info(f"{label}: [{_value(params[name])}]")

    node = ctx.fs.node(ctx.path(graph))
    host = node.host if node is not None and node.kind == "file" and node.stat()[0] & 0o400 else None
    model_size_mb = host.stat().st_size / 1e6 if host is not None else -1e-6
    t_init = time.perf_counter()
    if host is None:
        error(f"Could not open '{graph}'.")
        error(f"Failed to mmap model {graph}")
        return failed()
    head = host.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        error("The model is not a valid Flatbuffer file")
        error(f"Failed to mmap model {graph}")
        return failed()
    info(f"Loaded model {graph}")
    no_default = "use_xnnpack" in given and not params["use_xnnpack"]
    settings = {"threads": params["num_threads"] if params["num_threads"] > 0 else None,
                "delegate": "none" if no_default else "xnnpack"}
    from device_bench.runner import load_interpreter

    ctx.err("INFO: Initialized TensorFlow Lite runtime.\n")
    for name, what in _UNSUPPORTED.items():
        if params[name]:
            ctx.out(f"WARN: {what} acceleration is unsupported on this platform.\n")
    try:
        interp = load_interpreter(str(host), settings)
    except Exception as exc:  # noqa: BLE001 - the runtime's own message, then the tool's
        error(" ".join(str(exc).split()))
        error("Failed to allocate tensors!")
        return failed()
    if not no_default:
        ctx.err("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    if params["use_xnnpack"]:
        info("Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate.")
    slow = dev.slowdown
    init_us = int((time.perf_counter() - t_init) * 1e6 * slow)
    info(f"The input model file size (MB): {g(model_size_mb)}")
    info(f"Initialized session in {g(init_us / 1e3)}ms.")

    if params["dry_run"]:
        params.update(warmup_runs=0, warmup_min_secs=-1.0, num_runs=0, min_secs=-1.0)
    with dev.benchmarking():
        warm = _run(ctx, interp, params["warmup_runs"], params["warmup_min_secs"], params["max_secs"], params, slow)
        regular = _run(ctx, interp, params["num_runs"], params["min_secs"], params["max_secs"], params, slow)
    info(f"Inference timings in us: Init: {init_us}, First inference: {warm[0] if warm else 0}, "
         f"Warmup (avg): {g(_avg(warm))}, Inference (avg): {g(_avg(regular))}")
    arena_kb = sum(d["shape"].prod() * d["dtype"]().itemsize for d in interp.get_tensor_details()
                   if len(d["shape"])) / 1024.0
    init_mb = (model_size_mb * 1e6 / 1024.0 + arena_kb + 1200.0) / 1024.0
    info("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to "
         "the actual memory footprint of the model at runtime. Take the information at your discretion.")
    info(f"Memory footprint delta from the start of the tool (MB): init={g(init_mb)} overall={g(init_mb + 0.25)}")
    if params["report_peak_memory_footprint"]:
        peak = init_mb + 2.5
        info(f"Overall peak memory footprint (MB) via periodic monitoring: {g(peak)}")
        info("Memory status at the end of exeution:")
        info(f"- VmRSS              : {int(peak) + 12} MB")
        info(f"+ RssAnnon           : {int(peak) + 4} MB")
        info("+ RssFile + RssShmem : 8 MB")
    dev.benchmark_finished()
    return 0


def _run(ctx, interp, min_runs: int, min_secs: float, max_secs: float, params: dict, slow: float) -> list[int]:
    """BenchmarkModel::Run: at least min_runs and min_secs, never starting a run past max_secs."""
    ctx.out(f"INFO: Running benchmark for at least {min_runs} iterations and at least {g(min_secs)} seconds but "
            f"terminate if exceeding {g(max_secs)} seconds.\n")
    now = time.perf_counter()
    min_finish, max_finish = now + min_secs, now + max_secs
    delay = params["run_delay"]
    times: list[int] = []
    while (len(times) < min_runs or now < min_finish) and now <= max_finish:
        if ctx.cancelled:
            raise StreamClosed("cancelled")
        t0 = time.perf_counter()
        interp.invoke()
        t1 = time.perf_counter()
        times.append(int((t1 - t0) * 1e6 * slow))
        if delay > 0:
            ctx.sleep(delay)
        now = time.perf_counter()
    ctx.out(f"INFO: {stat_line(times)}\n\n")
    return times
