"""Shared pieces of the benchmarks: timing a call on a device, and printing/writing the JSON result."""

from __future__ import annotations

import json
import statistics
import time


def timed(fn, device, repeats: int = 3, statistic: str = "min") -> float:
    """Seconds of one call of ``fn`` after a warm-up call (cuDNN autotune, compile), over ``repeats``
    calls: the fastest (``"min"``) or the ``"median"``. CUDA work is synchronised before each clock read."""
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times) if statistic == "min" else statistics.median(times)


def emit(result: dict, out: str | None) -> None:
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        with open(out, "w") as fh:
            fh.write(text + "\n")
