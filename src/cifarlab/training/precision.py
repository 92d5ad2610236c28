"""Mixed precision where the hardware makes it pay.

On a CPU with AVX512-BF16 or AMX (oneDNN runs bfloat16 convolutions natively) `mixed_bfloat16`
trains faster than float32 (bench/results/train_throughput.json); on a GPU,
`mixed_float16` uses its tensor cores. Elsewhere bfloat16 would be emulated and slower, so float32.
Variables stay float32 either way, and the saved model is always a float32 copy.
"""

from __future__ import annotations

from pathlib import Path

from cifarlab.errors import CifarlabError

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def dtype_policy(precision: str) -> str:
    """The Keras dtype policy for a --precision choice."""
    if precision == "auto":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return POLICIES["float16"]
        return POLICIES["bfloat16"] if cpu_has_native_bf16() else POLICIES["float32"]
    if precision not in POLICIES:
        raise CifarlabError(f"unknown --precision {precision!r}; use auto, {', '.join(POLICIES)}")
    return POLICIES[precision]
