"""CPU session options every shipped network runs with, so that one sound gives the same
vectors on every machine.

The int8 networks are stored as quantise/dequantise pairs (QDQ). onnxruntime normally fuses
each pair around a convolution into one integer kernel. On x86 processors without VNNI that
kernel multiplies unsigned by signed bytes with an instruction whose 16-bit sums saturate,
so the same file embeds differently there (cosine 0.96-0.99 per block against the same
network on a VNNI processor, measured on Hydrogen and Sonic Pi samples). Where the processor
has no exact int8 kernel the pairs are left unfused: the network then computes exactly what
its quantisation says, in float, about 1.8x slower. A library scanned on one machine and
searched on another, or a catalogue a studio shares, needs that agreement.
"""
from __future__ import annotations

import functools
import os
import platform

INT8_KERNELS_ENV = "SAMPLESCOUT_INT8_KERNELS"   # "fused" or "reference": overrides the check

# /proc/cpuinfo flags of processors whose fused u8s8 kernels do not saturate
_EXACT_INT8_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"}


@functools.cache
def exact_int8_kernels() -> bool:
    """Whether onnxruntime's fused int8 kernels compute exactly on this processor. Any
    thread; ``$SAMPLESCOUT_INT8_KERNELS`` ("fused"/"reference") decides where set."""
    choice = os.environ.get(INT8_KERNELS_ENV, "").strip().lower()
    if choice in ("fused", "reference"):
        return choice == "fused"
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return bool(_EXACT_INT8_FLAGS & set(value.split()))
    except OSError:
        pass
    return False


def cpu_session_options(threads: int = 1, *, portable: bool = True, arena: bool = False):
    """``onnxruntime.SessionOptions`` for one sequential CPU session of ``threads`` threads.
    ``portable``: its outputs are stored or compared across machines (the encoder's vectors),
    so QDQ pairs are fused only where that is exact (see the module); a network whose
    output only orders a few candidates at once (the re-ranker, whose score moves about
    0.2 % either way) keeps the fused kernels, which are 4x faster there. ``arena``: keep
    onnxruntime's memory arena (see below). Any thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The arena keeps the largest run's tensors for good (about 60 MB in the window's
    # process after searches by example, bench/million.py). Without it a block embeds as
    # fast (1.10-1.15 ms either way); the live re-ranking process keeps it: without it its
    # end-of-window -> final p95 went from 54-58 to 64-69 ms (bench/live_latency.py, ABBA).
    options.enable_cpu_mem_arena = bool(arena)
    if portable and not exact_int8_kernels():
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return options
