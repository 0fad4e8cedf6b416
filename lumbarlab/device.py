"""One device decision per process, and an autocast helper.

The device is chosen once, on first use: ``LUMBARLAB_DEVICE`` (``cpu``, ``cuda``,
``cuda:1``, ``mps``) wins when set; otherwise CUDA when available, else CPU. Notebooks
call :func:`get_device` and never write ``.to("cuda")`` themselves.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import TYPE_CHECKING

from lumbarlab.errors import LumbarLabError

if TYPE_CHECKING:  # torch is imported late: it costs seconds on a cold start
    import torch

__all__ = ["get_device", "use_device", "autocast", "device_summary", "limit_cpu_threads", "ENV_VAR"]

ENV_VAR = "LUMBARLAB_DEVICE"


@functools.lru_cache(maxsize=1)
def get_device() -> torch.device:
    """Return the process-wide :class:`torch.device` (decided once, then cached).

    Raises:
        LumbarLabError: ``LUMBARLAB_DEVICE`` names a device this machine does not have.
    """
    import torch

    wanted = os.environ.get(ENV_VAR, "").strip()
    if wanted:
        try:
            dev = torch.device(wanted)
        except RuntimeError as exc:
            raise LumbarLabError(
                f"{ENV_VAR}={wanted!r} is not a device name; use 'cpu', 'cuda', 'cuda:N' or 'mps'."
            ) from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise LumbarLabError(
                f"{ENV_VAR}={wanted!r} asks for CUDA, but torch sees no CUDA device here; "
                f"unset {ENV_VAR} or set it to 'cpu'."
            )
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LumbarLabError(
                f"{ENV_VAR}={wanted!r}: only {torch.cuda.device_count()} CUDA device(s) are visible."
            )
        if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise LumbarLabError(f"{ENV_VAR}={wanted!r} asks for MPS, which this machine does not offer.")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_device(name: str = "auto") -> torch.device:
    """Make ``name`` ("auto", "cpu", "cuda", "cuda:1", "mps") the process's device from now on — what a lesson's
    ``DEVICE`` parameter does — and return it; "auto" goes back to CUDA-when-present. Everything that asks
    :func:`get_device` (training, the Predictor, the zoo's predictors) follows.

    Raises:
        LumbarLabError: the machine has no such device (the previous choice is kept).

    Example:
        >>> use_device("cpu").type
        'cpu'
    """
    previous = os.environ.get(ENV_VAR)
    name = str(name).strip().lower()
    if name in ("", "auto"):
        os.environ.pop(ENV_VAR, None)
    else:
        os.environ[ENV_VAR] = name
    get_device.cache_clear()
    try:
        return get_device()
    except LumbarLabError:
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous
        get_device.cache_clear()
        raise


def limit_cpu_threads(device: torch.device | str, threads: int = 1) -> int:
    """On a CPU ``device``, set torch's intra-op threads to ``threads`` and return the count it had; on any other
    device change nothing (and return the current count). Give the returned count back to ``torch.set_num_threads``
    to undo.

    Why: a lesson's networks are tiny (tens of thousands of parameters, 64–128 px images) — too little work per
    operation to split across threads. On the lab's 2-core CI machine, sharing its cores with the notebook server,
    two torch threads ran such lessons up to ten times slower than one, each waiting on the other (lessons 05b and
    19, FAST, while other jobs shared the cores). Larger networks on a machine of their own may want more threads:
    lessons 19 and 20 call this in FAST only; 05b, 17 and 18, whose problems stay small in every mode, always.

    Args:
        device: the lesson's device (``lesson.device``) or its name.
        threads: intra-op threads to use on the CPU (≥ 1).

    Example:
        >>> import torch
        >>> before = limit_cpu_threads("cpu", 1)
        >>> torch.get_num_threads()
        1
        >>> limit_cpu_threads("cuda", 1) == 1  # not the CPU: nothing changes
        True
        >>> _ = limit_cpu_threads("cpu", before)
    """
    import torch

    if threads < 1:
        raise LumbarLabError(f"threads must be at least 1, got {threads}.")
    before = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(int(threads))
    return before


def autocast(enabled: bool = True, dtype: torch.dtype | None = None) -> contextlib.AbstractContextManager:
    """Mixed precision for the process device: bf16 (or fp16) on CUDA, a no-op on CPU.

    On CUDA the default dtype is bfloat16 where the GPU supports it (Ampere and newer),
    else float16. On CPU autocast would change numerics for little gain on small
    models, so lessons run in float32 there.

    Example:
        >>> import torch
        >>> net, x = torch.nn.Linear(4, 2), torch.ones(3, 4)
        >>> with autocast():  # bfloat16/float16 on CUDA, a no-op on the CPU
        ...     y = net(x)
        >>> y.shape
        torch.Size([3, 2])
    """
    import torch

    dev = get_device()
    if not enabled or dev.type != "cuda":
        return contextlib.nullcontext()
    if dtype is None:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def device_summary() -> dict[str, object]:
    """Describe the chosen device: type, name and memory in GiB for a GPU."""
    import torch

    dev = get_device()
    info: dict[str, object] = {"device": str(dev), "torch": torch.__version__}
    if dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        info["gpu_name"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["cuda"] = torch.version.cuda
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info
