"""device_bench: runs a plaid benchmark plan on the machine it is on.

Imports only numpy and the runtime the plan names (ai-edge-litert's TFLite interpreter or
onnxruntime: device_bench/runtimes.py); never torch or
plaid, so it can be copied to a Jetson or a board and run there:

    python -m device_bench PLAN.json -o RESULTS.json
"""

__version__ = "1"
