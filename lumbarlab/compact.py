"""Compact networks for the clinic's CPU: a matched large/compact pair, and what int8 quantisation, pruning and
export do to latency and accuracy, measured on this machine.

The survey (Zhang 2024, Section 6) names the computational demands of deep networks as an obstacle in the clinic
and reports that compact networks like MobileNet (Howard et al. 2017) mitigated it. This module measures that on
this machine instead of quoting it:

| function | what it gives |
| --- | --- |
| :func:`matched_pair` | a MONAI U-Net of a realistic width and a depthwise-separable :class:`CompactUNet` (≥ 10× fewer parameters and FLOPs) |
| :func:`latency` / :func:`latency_table` | batch-1 CPU latency in ms: median and quartiles of ``runs`` timed calls after ``warmup``, threads stated; several models timed interleaved in one session |
| :func:`paired_speedup` | the speed-up of one model over another from one session: median of per-round ratios, bootstrap 95 % interval, "cannot tell" when it contains 1 |
| :func:`quantise_int8` | post-training static int8 (PyTorch's FX graph mode, x86/fbgemm kernels) — Jacob et al., CVPR 2018 |
| :func:`quantise_dynamic` | dynamic int8 for ``nn.Linear`` layers only (weights int8, activations quantised on the fly) |
| :func:`prune` | L1 magnitude pruning, unstructured (Han et al., NeurIPS 2015) or whole output channels (Li et al., ICLR 2017), with a :class:`SparsityReport` |
| :func:`export_torchscript` / :func:`export_onnx` | a file the clinic's runtime loads without this lab's Python code |
| :func:`mean_dice_of` / :func:`comparison_rows` | Dice on an X-ray split and the rows of the comparison table |

Example:
    >>> import torch
    >>> net = CompactUNet(widths=(4, 8))
    >>> net(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 3, 32, 32])
    >>> t = latency(net, (1, 1, 32, 32), runs=5, warmup=1)
    >>> t.median_ms > 0 and t.threads == torch.get_num_threads()
    True
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics.seeds import seed_spread

__all__ = ["CompactUNet", "SeparableConv", "matched_pair", "segmentation_loss", "train_segmenter", "training_step_ms",
           "standard_flops", "separable_flops", "Latency", "latency", "latency_table", "Speedup", "paired_speedup", "op_times", "quantise_int8", "quantise_dynamic",
           "SparsityReport", "prune", "sparsity", "slimmed", "export_torchscript", "load_torchscript", "onnx_available",
           "export_onnx", "variants", "predict_labels", "mean_dice_of", "comparison_rows"]


def standard_flops(c_in: int, c_out: int, k: int, h: int, w: int) -> int:
    """FLOPs of a standard k×k convolution producing an h×w map: 2·k²·C_in·C_out·h·w (a multiply-add is 2 FLOPs).

    Example:
        >>> standard_flops(32, 64, 3, 64, 64)
        150994944
    """
    return 2 * k * k * c_in * c_out * h * w


def separable_flops(c_in: int, c_out: int, k: int, h: int, w: int) -> int:
    """FLOPs of a depthwise-separable convolution (Howard et al., "MobileNets", 2017): a k×k depthwise
    convolution per channel, 2·k²·C_in·h·w, then a 1×1 pointwise one, 2·C_in·C_out·h·w. Its ratio to
    :func:`standard_flops` is 1/C_out + 1/k².

    Example:
        >>> round(standard_flops(32, 64, 3, 64, 64) / separable_flops(32, 64, 3, 64, 64), 1)
        7.9
    """
    return 2 * k * k * c_in * h * w + 2 * c_in * c_out * h * w


class SeparableConv(nn.Sequential):
    """3×3 depthwise convolution + BN + ReLU, then 1×1 pointwise convolution + BN + ReLU (MobileNet v1 block,
    Howard et al. 2017). Conv → BN → ReLU triples are what PyTorch's quantiser fuses into one int8 kernel.

    Args:
        c_in: input channels.
        c_out: output channels.
        stride: 2 halves the map (the depthwise convolution strides).

    Example:
        >>> SeparableConv(8, 16, stride=2)(torch.zeros(1, 8, 16, 16)).shape
        torch.Size([1, 16, 8, 8])
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class CompactUNet(nn.Module):
    """A 2D U-Net built of depthwise-separable blocks: a standard 3×3 stem (one input channel leaves nothing to
    separate), one strided :class:`SeparableConv` per level down, nearest-neighbour upsampling + skip
    concatenation + :class:`SeparableConv` per level up, and a 1×1 head to the class logits.

    Args:
        in_channels: image channels.
        out_channels: classes (background included).
        widths: channels per level, full resolution first; ``len(widths) - 1`` halvings.

    Example:
        >>> CompactUNet(widths=(8, 16, 32))(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 3, 64, 64])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, widths: Sequence[int] = (16, 32, 64, 128)):
        super().__init__()
        if len(widths) < 2:
            raise LumbarLabError(f"widths needs at least two levels, got {tuple(widths)}.")
        w = list(widths)
        self.widths = tuple(w)
        # the stem strides: a full-resolution layer would cost more than the whole rest of the network
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w[0], 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w[0]),
                                  nn.ReLU(inplace=True))
        self.down = nn.ModuleList([SeparableConv(w[i], w[i + 1], stride=2) for i in range(len(w) - 1)])
        self.up = nn.ModuleList([SeparableConv(w[i + 1] + w[i], w[i]) for i in reversed(range(len(w) - 1))])
        self.head = nn.Conv2d(w[0], out_channels, 1)
        # logits are interpolated back to the input's size: smooth class boundaries for the price of three maps
        self.output_upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        h = skips.pop()
        for block in self.up:
            # functional nearest upsampling: the quantiser keeps it in int8 (an nn.Upsample module goes via float)
            h = block(torch.cat([torch.nn.functional.interpolate(h, scale_factor=2.0, mode="nearest"), skips.pop()], dim=1))
        return self.output_upsample(self.head(h))


def matched_pair(classes: int = 3, large_size: str = "small", compact_widths: Sequence[int] = (16, 32, 64, 128)
                 ) -> dict[str, nn.Module]:
    """The two networks of the comparison, both 2D segmenters of ``classes`` classes from one grey channel:
    ``"large"`` is MONAI's U-Net as :func:`lumbarlab.models.build_model` builds it (``size="small"``: 16–256
    channels, two residual units per level, instance norm, PReLU, transposed convolutions) and ``"compact"`` a
    :class:`CompactUNet` (16–128 channels of depthwise-separable blocks).

    Args:
        classes: output classes, background included.
        large_size: the U-Net's width (``tiny`` 8–128, ``small`` 16–256, ``base`` 32–512 channels).
        compact_widths: the compact network's channels per level.

    Example:
        >>> pair = matched_pair()
        >>> sum(p.numel() for p in pair["large"].parameters()) > 10 * sum(p.numel() for p in pair["compact"].parameters())
        True
    """
    from lumbarlab.models import build_model

    return {"large": build_model("segmentation", "unet", size=large_size, out_channels=classes),
            "compact": CompactUNet(1, classes, compact_widths)}


def segmentation_loss() -> callable:
    """Dice + cross-entropy on logits (B, K, H, W) and integer masks (B, H, W) — the loss the zoo's segmenters
    train with (MONAI's ``DiceCELoss``).

    Example:
        >>> loss = segmentation_loss()
        >>> float(loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 8, 8, dtype=torch.long))) > 0
        True
    """
    from monai.losses import DiceCELoss

    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
    return lambda logits, masks: dice_ce(logits, masks[:, None])


@dataclass(frozen=True)
class Latency:
    """Wall-clock time of one forward pass, in milliseconds: the median and the interquartile range (75th minus
    25th percentile) of ``runs`` timed calls, with the CPU threads torch used; ``q1_ms``/``q3_ms`` are the
    quartiles themselves and ``times_ms`` every timed call in order (round by round for :func:`latency_table`,
    which is what :func:`paired_speedup` pairs).

    Example:
        >>> print(Latency(4.2, 0.3, 2, 30))
        4.20 ms (IQR 0.30, 30 runs, 2 threads)
        >>> print(Latency(4.2, 0.3, 2, 30, q1_ms=4.1, q3_ms=4.4))
        4.20 ms (q1–q3 4.10–4.40, 30 runs, 2 threads)
    """

    median_ms: float
    iqr_ms: float
    threads: int
    runs: int
    q1_ms: float | None = None
    q3_ms: float | None = None
    times_ms: tuple[float, ...] = ()

    def __str__(self) -> str:
        spread = (f"q1–q3 {self.q1_ms:.2f}–{self.q3_ms:.2f}" if self.q1_ms is not None and self.q3_ms is not None
                  else f"IQR {self.iqr_ms:.2f}")
        return f"{self.median_ms:.2f} ms ({spread}, {self.runs} runs, {self.threads} threads)"


def _on_cpu(model):
    """The model itself when its parameters are on the CPU (or it has none), else a CPU copy: the caller's model is
    never moved. (``eval()`` is still switched on in place, as every timing needs it.)"""
    if isinstance(model, nn.Module) and any(p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).cpu()
    if hasattr(model, "eval"):
        model.eval()
    return model


def latency(model, input_shape: tuple[int, ...], runs: int = 30, warmup: int = 5, threads: int | None = None
            ) -> Latency:
    """Batch latency of ``model`` on the CPU: ``warmup`` untimed calls (allocations, packed weights, the
    TorchScript profiling runs), then ``runs`` timed calls under ``torch.inference_mode``. To compare models use
    :func:`latency_table` (one interleaved session) and :func:`paired_speedup`, never two separate calls.

    Args:
        model: any callable module (eager, quantised, TorchScript). A model with parameters off the CPU is timed
            as a CPU copy (the caller's model is not moved); ``eval()`` is set on it in place.
        input_shape: e.g. ``(1, 1, 128, 128)`` — batch 1 is what a clinic's single study sees.
        runs: timed calls (the median is robust to a neighbour's burst of load; the quartiles show the spread).
        warmup: untimed calls first.
        threads: set ``torch.set_num_threads`` for the measurement (restored after); None keeps the current.

    Example:
        >>> t = latency(torch.nn.Conv2d(1, 4, 3), (1, 1, 16, 16), runs=5, warmup=1, threads=1)
        >>> t.threads, t.runs, t.median_ms > 0, t.q1_ms <= t.median_ms <= t.q3_ms
        (1, 5, True, True)
    """
    return latency_table({"model": model}, input_shape, runs=runs, warmup=warmup, threads=threads)["model"]


def latency_table(models: dict, input_shape: tuple[int, ...], runs: int = 30, warmup: int = 5,
                  threads: int | None = None, seed: int = 0) -> dict[str, Latency]:
    """:func:`latency` of several models timed **interleaved** in one session: each round calls every model once,
    so a burst of load from another job on a shared machine falls on all of them alike instead of on whichever was
    timed then. The order within a round is shuffled (seeded), so no model always runs right after the same
    neighbour — whose caches, allocator state or frequency boost it would otherwise inherit every time. Every call's
    time is kept (``Latency.times_ms``, one per round), so that :func:`paired_speedup` can form the ratio of two
    models round by round.

    Args:
        models: name → callable model (eager, quantised, TorchScript); see :func:`latency` for the CPU and eval.
        input_shape: the batch every model gets, e.g. ``(1, 1, 128, 128)``.
        runs: rounds (timed calls per model).
        warmup: untimed rounds first.
        threads: ``torch.set_num_threads`` for the measurement (restored after); None keeps the current.
        seed: seeds the order of the models within each round.

    Example:
        >>> out = latency_table({"a": torch.nn.Identity(), "b": torch.nn.Conv2d(1, 2, 3)}, (1, 1, 8, 8), runs=4, warmup=1)
        >>> sorted(out), all(t.median_ms > 0 and len(t.times_ms) == 4 for t in out.values())
        (['a', 'b'], True)
    """
    if runs < 1 or warmup < 0:
        raise LumbarLabError(f"runs must be ≥ 1 and warmup ≥ 0, got runs={runs}, warmup={warmup}.")
    if not models:
        raise LumbarLabError("latency_table needs at least one model.")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        used = torch.get_num_threads()
        cpu_models = {name: _on_cpu(m) for name, m in models.items()}
        x = torch.rand(input_shape)
        times: dict[str, list[float]] = {name: [] for name in models}
        names = list(cpu_models)
        order = np.random.default_rng(seed)
        with torch.inference_mode():
            for r in range(warmup + runs):
                for k in order.permutation(len(names)):
                    name, m = names[k], cpu_models[names[k]]
                    start = time.perf_counter()
                    m(x)
                    if r >= warmup:
                        times[name].append(1000 * (time.perf_counter() - start))
    finally:
        torch.set_num_threads(before)
    return {name: _summarise(t, used) for name, t in times.items()}


def _summarise(times: list[float], threads: int) -> Latency:
    q1, _, q3 = statistics.quantiles(times, n=4) if len(times) > 1 else (times[0], None, times[0])
    return Latency(float(statistics.median(times)), float(q3 - q1), threads, len(times), float(q1), float(q3),
                   tuple(float(t) for t in times))


@dataclass(frozen=True)
class Speedup:
    """How many times faster ``other`` ran than ``reference`` in one interleaved session: the median of the
    per-round ratios (reference time / other time of the same round), a bootstrap 95 % interval of that median,
    and the per-round ratios' quartiles. ``verdict`` is "faster" / "slower" only when the interval excludes 1.

    Example:
        >>> print(Speedup(2.0, 1.8, 2.2, 1.9, 2.1, 30))
        2.00× (95 % interval 1.80–2.20, faster)
        >>> Speedup(1.05, 0.9, 1.2, 0.95, 1.1, 30).verdict
        'cannot tell'
    """

    median: float
    lo: float
    hi: float
    q1: float
    q3: float
    rounds: int

    @property
    def verdict(self) -> str:
        return "faster" if self.lo > 1 else "slower" if self.hi < 1 else "cannot tell"

    def __str__(self) -> str:
        return f"{self.median:.2f}× (95 % interval {self.lo:.2f}–{self.hi:.2f}, {self.verdict})"


def paired_speedup(reference: Latency, other: Latency, boot: int = 2000, seed: int = 0) -> Speedup:
    """Speed-up of ``other`` over ``reference`` from one :func:`latency_table` session: per round r the ratio
    ``reference.times_ms[r] / other.times_ms[r]`` (both timed within the same round, so under the same load), then
    the median of those ratios with a percentile-bootstrap 95 % interval (``boot`` resamples of the rounds).
    Timings from two different sessions cannot be paired and raise.

    Example:
        >>> a = Latency(2.0, 0.0, 1, 4, 2.0, 2.0, (2.0, 2.2, 1.9, 2.1))
        >>> b = Latency(1.0, 0.0, 1, 4, 1.0, 1.0, (1.0, 1.1, 0.95, 1.05))
        >>> s = paired_speedup(a, b)
        >>> round(s.median, 6), s.verdict
        (2.0, 'faster')
    """
    ref, oth = np.asarray(reference.times_ms, float), np.asarray(other.times_ms, float)
    if len(ref) == 0 or len(ref) != len(oth):
        raise LumbarLabError("paired_speedup needs the per-round times of one latency_table session "
                             f"({len(ref)} and {len(oth)} rounds given).")
    ratios = ref / oth
    rng = np.random.default_rng(seed)
    medians = np.median(ratios[rng.integers(0, len(ratios), (boot, len(ratios)))], axis=1)
    lo, hi = np.percentile(medians, [2.5, 97.5])
    q1, q3 = np.percentile(ratios, [25, 75])
    return Speedup(float(np.median(ratios)), float(lo), float(hi), float(q1), float(q3), len(ratios))


def op_times(model, input_shape: tuple[int, ...], runs: int = 5, top: int = 6) -> dict[str, float]:
    """Where a forward pass spends its time: PyTorch profiler self CPU time per operator, in ms per forward pass,
    the ``top`` largest (after two untimed passes). It explains a latency — say, which int8 kernels are slow.

    Example:
        >>> ops = op_times(torch.nn.Conv2d(1, 4, 3), (1, 1, 16, 16), runs=2, top=1)
        >>> len(ops), all(v >= 0 for v in ops.values())
        (1, True)
    """
    from torch.profiler import ProfilerActivity, profile

    if hasattr(model, "eval"):
        model.eval()
    x = torch.rand(input_shape)
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                model(x)
    ranked = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return {e.key: e.self_cpu_time_total / 1000 / runs for e in ranked}


def _calibration_tensors(batches: Iterable) -> list[torch.Tensor]:
    out = [(b[0] if isinstance(b, (list, tuple)) else b) for b in batches]
    if not out:
        raise LumbarLabError("quantisation needs at least one calibration batch (images the model will see).")
    return [torch.as_tensor(b, dtype=torch.float32).cpu() for b in out]


def quantise_int8(model: nn.Module, calibration_batches: Iterable, engine: str = "x86",
                  only: tuple[type, ...] | None = None) -> nn.Module:
    """Post-training static int8 quantisation (Jacob et al., CVPR 2018): weights and activations become
    ``x ≈ s·(q − z)`` with 8-bit ``q``, a scale ``s`` and a zero point ``z``; the activations' ranges are
    observed on ``calibration_batches``. PyTorch's FX graph mode (``prepare_fx``/``convert_fx`` of
    ``torch.ao.quantization``) traces the network, fuses conv + BN + ReLU, and swaps in quantised kernels of
    the ``engine`` (``"x86"``: fbgemm/oneDNN; ``"qnnpack"`` for ARM). The input model is not changed; the result
    runs on the CPU only.

    What the ``x86`` default qconfig does (``get_default_qconfig_mapping("x86")``): activations are unsigned 8-bit
    observed by a ``HistogramObserver`` (which picks the range minimising the quantisation error, not simply min and
    max) with ``reduce_range=True`` — 7 bits, q in 0–127, to keep fbgemm's 16-bit accumulators from overflowing;
    convolution weights are signed 8-bit, symmetric (z = 0), one scale per output channel; ``ConvTranspose``
    weights one symmetric scale per tensor. ``torch.backends.quantized.engine`` is set to ``engine`` while
    quantising and restored afterwards.

    Args:
        model: a float network (any device); a copy is quantised.
        calibration_batches: image tensors (B, C, H, W), or ``(image, target)`` pairs, from the training data.
        engine: a backend of ``torch.backends.quantized.supported_engines``.
        only: quantise only these module types or functions (e.g. ``(nn.Conv2d, operator.add)``) and leave every
            other operation in float; None quantises everything the engine supports. Measured on MONAI's U-Net here: quantising everything
            lost most of its Dice, the convolutions alone (with instance norm) none — check Dice after quantising.

    Example:
        >>> net = CompactUNet(widths=(4, 8)).eval()
        >>> x = torch.rand(2, 1, 32, 32)
        >>> q = quantise_int8(net, [x])
        >>> q(x).shape
        torch.Size([2, 3, 32, 32])
    """
    from torch.ao.quantization import QConfigMapping, get_default_qconfig, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if engine not in torch.backends.quantized.supported_engines:
        raise LumbarLabError(f"quantisation engine {engine!r} is not in this torch build; "
                             f"choose from {torch.backends.quantized.supported_engines}.")
    batches = _calibration_tensors(calibration_batches)
    previous_engine = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    float_model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao (not installed here); the lesson says so once
        warnings.simplefilter("ignore")
        if only is None:
            mapping = get_default_qconfig_mapping(engine)
        else:
            # each type gets the qconfig the default mapping gives it (ConvTranspose: per-tensor weights)
            defaults = get_default_qconfig_mapping(engine).object_type_qconfigs
            mapping = QConfigMapping()
            for kind in only:
                mapping = mapping.set_object_type(kind, defaults.get(kind, get_default_qconfig(engine)))
        prepared = prepare_fx(float_model, mapping, example_inputs=(batches[0],))
        try:
            with torch.inference_mode():
                for x in batches:
                    prepared(x)
            return convert_fx(prepared)
        finally:
            torch.backends.quantized.engine = previous_engine


def quantise_dynamic(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantisation of every ``nn.Linear`` (weights stored int8, activations quantised per call):
    the one-line recipe for transformer and MLP heads. Convolutions stay float, so a purely convolutional
    segmenter is unchanged by it. Returns a CPU copy.

    Example:
        >>> q = quantise_dynamic(torch.nn.Sequential(torch.nn.Linear(8, 4)))
        >>> type(q[0]).__name__
        'Linear'
        >>> "dynamic" in type(q[0]).__module__
        True
    """
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the torchao migration notice, as above
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear}, dtype=torch.qint8)


@dataclass(frozen=True)
class SparsityReport:
    """Zeros after pruning: ``pruned``/``total`` weights of the pruned layers (``fraction``), whole output
    channels zeroed (``channels_zeroed`` of ``channels``) and per layer (name → fraction of zero weights).

    Example:
        >>> print(SparsityReport(50, 100, 1, 8, {}))
        50.0% of 100 weights zero; 1 of 8 output channels entirely zero
    """

    pruned: int
    total: int
    channels_zeroed: int
    channels: int
    per_layer: dict[str, float]

    @property
    def fraction(self) -> float:
        return self.pruned / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (f"{self.fraction:.1%} of {self.total:,} weights zero; {self.channels_zeroed} of {self.channels} "
                f"output channels entirely zero")


def _prunable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Convolutions and linear layers, in order, without the last one: its output channels are the classes."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d,
                                                                          nn.ConvTranspose3d, nn.Linear))]
    return layers[:-1]


def _out_dim(module: nn.Module) -> int:
    return 1 if isinstance(module, (nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0  # (in, out, k…) for transposed


def sparsity(model: nn.Module) -> SparsityReport:
    """Count zero weights and all-zero output channels in the layers :func:`prune` prunes.

    Example:
        >>> sparsity(CompactUNet(widths=(4, 8))).fraction
        0.0
    """
    pruned = total = zeroed = channels = 0
    per_layer = {}
    for name, m in _prunable(model):
        w = m.weight.detach()
        zeros = int((w == 0).sum())
        pruned, total = pruned + zeros, total + w.numel()
        dim = _out_dim(m)
        per_channel = (w.transpose(0, dim).reshape(w.shape[dim], -1) != 0).any(1)
        zeroed, channels = zeroed + int((~per_channel).sum()), channels + w.shape[dim]
        per_layer[name] = zeros / w.numel()
    return SparsityReport(pruned, total, zeroed, channels, per_layer)


def prune(model: nn.Module, amount: float, structured: bool = False) -> tuple[nn.Module, SparsityReport]:
    """Magnitude pruning with ``torch.nn.utils.prune``, made permanent, on a copy of ``model``; the output layer
    is left whole.

    * ``structured=False``: the ``amount`` fraction of all weights of smallest magnitude, ranked over the whole
      network at once (global L1, Han et al., NeurIPS 2015) — exactly ``round(amount × total)`` weights zeroed.
    * ``structured=True``: in every layer, the ``amount`` fraction of output channels with the smallest L1 norm
      (Li et al., ICLR 2017). A zeroed convolution channel is not silent by itself: its bias and the BatchNorm
      after it (``beta``, and ``-mean·gamma/sd``) still add a constant to it. So the bias of the convolution and the
      weight and bias of a ``BatchNorm`` that directly follows it (the next module, with as many features) are
      zeroed for the same channels, and the channel's output is exactly 0 — what cutting it out would give. Each
      layer's channels are chosen on their own: in a depthwise-separable block the depthwise and the pointwise
      channels that are zeroed do not line up, and a norm that is not a BatchNorm (MONAI's instance norm) is left.

    Either way the tensors keep their shapes: dense kernels multiply the zeros as fast as any other number, so
    latency does not fall until a sparse kernel runs them or the zeroed channels are cut out of the network.

    Args:
        model: a float network.
        amount: fraction in [0, 1).
        structured: whole output channels instead of single weights.

    Example:
        >>> net, report = prune(CompactUNet(widths=(4, 8)), 0.5)
        >>> report.pruned == round(0.5 * report.total)
        True
    """
    import torch.nn.utils.prune as tprune

    if not 0.0 <= amount < 1.0:
        raise LumbarLabError(f"amount is the fraction of weights to zero, in [0, 1); got {amount}.")
    pruned = copy.deepcopy(model)
    layers = _prunable(pruned)
    if not layers:
        raise LumbarLabError("this model has no convolution or linear layer to prune (besides its output layer).")
    if structured:
        for _, m in layers:
            tprune.ln_structured(m, "weight", amount=amount, n=1, dim=_out_dim(m))
        _silence_zeroed_channels(pruned, [m for _, m in layers])
    else:
        tprune.global_unstructured([(m, "weight") for _, m in layers], tprune.L1Unstructured, amount=amount)
    for _, m in layers:
        tprune.remove(m, "weight")  # fold the mask into the weight: a plain module again, for export
    return pruned, sparsity(pruned)


def _silence_zeroed_channels(model: nn.Module, layers: list[nn.Module]) -> None:
    """Zero the bias and the following BatchNorm's affine parameters of every all-zero output channel."""
    modules = [m for m in model.modules() if not list(m.children())]
    after = {id(a): b for a, b in zip(modules, modules[1:], strict=False)}
    with torch.no_grad():
        for m in layers:
            dim = _out_dim(m)
            mask = m.weight_mask if hasattr(m, "weight_mask") else (m.weight != 0)
            dead = ~(mask.transpose(0, dim).reshape(mask.shape[dim], -1) != 0).any(1)
            if not dead.any():
                continue
            if getattr(m, "bias", None) is not None:
                m.bias[dead] = 0
            norm = after.get(id(m))
            if isinstance(norm, nn.modules.batchnorm._BatchNorm) and norm.num_features == len(dead) and norm.affine:
                norm.weight[dead] = 0
                norm.bias[dead] = 0


def export_torchscript(model: nn.Module, example: torch.Tensor, path) -> Path:
    """Trace ``model`` on ``example`` (CPU, eval mode), freeze it (weights become constants, conv + BN folded)
    and save the TorchScript file — written beside ``path`` and renamed into place, so a reader never sees half
    a file. Loads with ``torch.jit.load`` in any PyTorch or LibTorch (C++) runtime, without this lab.

    Args:
        model: eager float or quantised network.
        example: one input batch, e.g. ``torch.rand(1, 1, 128, 128)``.
        path: destination (``.pt``).

    Example:
        >>> import tempfile
        >>> net = CompactUNet(widths=(4, 8)).eval()
        >>> x = torch.rand(1, 1, 32, 32)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     saved = export_torchscript(net, x, Path(folder) / "compact.pt")
        ...     torch.allclose(load_torchscript(saved)(x), net(x), atol=1e-5)
        True
    """
    from lumbarlab.io import atomic_path

    path = Path(path)
    model = model.cpu().eval()
    example = example.cpu()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python values frozen into the graph
        traced = torch.jit.freeze(torch.jit.trace(model, example).eval())
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # torch 2.13 marks TorchScript deprecated in favour of torch.export; its files still load in LibTorch
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(traced, str(tmp))
    return path


def load_torchscript(path) -> torch.jit.ScriptModule:
    """Load an exported TorchScript file onto the CPU (raises :class:`LumbarLabError` when it is not one).

    Example:
        >>> load_torchscript("missing.pt")
        Traceback (most recent call last):
        ...
        lumbarlab.errors.LumbarLabError: missing.pt: no such TorchScript file; export one with export_torchscript().
    """
    path = Path(path)
    if not path.exists():
        raise LumbarLabError(f"{path}: no such TorchScript file; export one with export_torchscript().")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see export_torchscript
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # a foreign or truncated file fails in many ways
        raise LumbarLabError(f"{path}: not a TorchScript file ({exc.__class__.__name__}).") from exc


def onnx_available() -> bool:
    """Whether ``onnx`` can be imported (ONNX export needs it; ``onnxruntime`` runs the file).

    Example:
        >>> isinstance(onnx_available(), bool)
        True
    """
    import importlib.util

    return importlib.util.find_spec("onnx") is not None


def export_onnx(model: nn.Module, example: torch.Tensor, path, opset: int = 18) -> Path:
    """Export a float ``model`` to ONNX (batch dimension dynamic), written beside ``path`` and renamed into
    place, and checked with ``onnx.checker``. Needs the ``onnx`` package (and ``onnxscript`` for PyTorch's
    dynamo exporter, used when present); raises :class:`LumbarLabError` saying what to install otherwise.

    Args:
        model: eager float network (quantised FX models do not export to ONNX this way).
        example: one input batch.
        path: destination (``.onnx``).
        opset: ONNX operator set.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     try:
        ...         done = export_onnx(CompactUNet(widths=(4, 8)), torch.rand(1, 1, 32, 32), Path(folder) / "c.onnx").exists()
        ...     except LumbarLabError:
        ...         done = not onnx_available()  # the message says what to install
        >>> done
        True
    """
    import importlib.util

    from lumbarlab.io import atomic_path

    if not onnx_available():
        raise LumbarLabError("ONNX export needs the onnx package (and onnxruntime to run the file): "
                             "pip install onnx onnxscript onnxruntime — or use export_torchscript().")
    import onnx

    path = Path(path)
    model = model.cpu().eval()
    dynamo = importlib.util.find_spec("onnxscript") is not None
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = ({"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamo
                  else {"dynamic_axes": {"image": {0: "batch"}, "logits": {0: "batch"}}})
        torch.onnx.export(model, (example.cpu(),), str(tmp), input_names=["image"], output_names=["logits"],
                          opset_version=opset, dynamo=dynamo, **kwargs)
        onnx.checker.check_model(str(tmp))
    return path


def train_segmenter(model: nn.Module, split, epochs: int, batch_size: int = 8, lr: float = 1e-2, seed: int = 0,
                    augment: bool = True):
    """Train ``model`` on an X-ray split's vertebra masks with :func:`lumbarlab.train.fit` (AdamW, cosine decay,
    :func:`segmentation_loss`): ``epochs × (len(split) // batch_size)`` optimiser steps, the same for every
    network given the same arguments — the matched budget of a fair comparison. Returns fit's ``History``
    (loss per epoch). The model trains on the lesson's device (:func:`lumbarlab.device.get_device`).

    Args:
        model: a segmenter with three output classes.
        split: a :class:`lumbarlab.datasets.XraySplit` with masks.
        epochs: passes over the split.
        batch_size: images per step (the last incomplete batch is dropped, so every step sees as many).
        lr: AdamW learning rate.
        seed: seeds the shuffling and the augmentation draws.
        augment: contrast, gamma, noise and shift augmentation.

    Example:
        >>> from lumbarlab.datasets import XraySplit
        >>> split = XraySplit(np.random.rand(4, 32, 32).astype(np.float32), np.zeros(4, np.float32),
        ...                   np.zeros((4, 32, 32), np.uint8), np.zeros((4, 22, 2), np.float32), (1.0, 1.0), np.arange(4))
        >>> len(train_segmenter(CompactUNet(widths=(4, 8)), split, epochs=2, batch_size=2).train_loss)
        2
    """
    from lumbarlab.datasets import XrayDataset
    from lumbarlab.train import fit, seed_everything

    if len(split) < batch_size:
        raise LumbarLabError(f"{len(split)} training images are fewer than one batch of {batch_size}.")
    seed_everything(seed)
    loader = torch.utils.data.DataLoader(XrayDataset(split, "segmentation", augment=augment), batch_size=batch_size,
                                         shuffle=True, drop_last=True)
    return fit(model, loader, segmentation_loss(), epochs=epochs, lr=lr, seed=seed, progress=False)


def training_step_ms(model: nn.Module, batch_size: int = 8, size: int = 128, repeats: int = 3) -> float:
    """Milliseconds of one training step (forward, :func:`segmentation_loss`, backward, AdamW) on random images
    of ``batch_size`` × ``size``², the fastest of ``repeats`` after one warm-up, on the model's device. The
    model's weights are restored afterwards.

    Example:
        >>> training_step_ms(CompactUNet(widths=(4, 8)), batch_size=2, size=32, repeats=1) > 0
        True
    """
    device = next(model.parameters()).device
    state = copy.deepcopy(model.state_dict())
    loss_fn = segmentation_loss()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch_size, 1, size, size, device=device)
    y = torch.randint(0, 3, (batch_size, size, size), device=device)
    model.train()
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimiser.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step allocates and is not counted
            times.append(1000 * (time.perf_counter() - start))
    model.load_state_dict(state)
    return min(times)


def slimmed(model: nn.Module, keep: float) -> nn.Module:
    """A fresh network of the same design with ``keep`` × the channels in every level (at least one): a stand-in
    for the *latency* of a network whose channels were removed. It is not what :func:`prune` with
    ``structured=True`` leaves: that zeroes channels layer by layer without linking them (in a separable block the
    depthwise and pointwise channels it zeroes do not line up), so cutting them out would need surgery this lab does
    not do. Its weights are new and untrained: time it, do not predict with it.

    Args:
        model: a :class:`CompactUNet` or a MONAI ``UNet``.
        keep: fraction of channels kept, in (0, 1].

    Example:
        >>> slimmed(CompactUNet(widths=(8, 16)), 0.75).head.in_channels
        6
    """
    from monai.networks.nets import UNet

    if not 0.0 < keep <= 1.0:
        raise LumbarLabError(f"keep is the fraction of channels kept, in (0, 1]; got {keep}.")

    def scale(ws):
        return tuple(max(1, round(w * keep)) for w in ws)

    if isinstance(model, CompactUNet):
        return CompactUNet(model.stem[0].in_channels, model.head.out_channels, scale(model.widths))
    if isinstance(model, UNet):
        return UNet(spatial_dims=model.dimensions, in_channels=model.in_channels, out_channels=model.out_channels,
                    channels=scale(model.channels), strides=model.strides, num_res_units=model.num_res_units)
    raise LumbarLabError(f"slimmed() knows CompactUNet and MONAI's UNet, not {type(model).__name__}.")


def variants(model: nn.Module, calibration_batches: Iterable, example: torch.Tensor, folder, prune_amount: float = 0.5,
             channel_amount: float = 0.25) -> dict[str, tuple[object, SparsityReport | None]]:
    """Each compression step applied to a trained float ``model`` (a CPU copy; the model is not changed):

    * ``"fp32"`` the eager model itself, the baseline;
    * ``"int8"`` :func:`quantise_int8` calibrated on ``calibration_batches``;
    * ``"pruned"`` :func:`prune`, unstructured, ``prune_amount`` of the weights;
    * ``"channels"`` :func:`prune`, structured, ``channel_amount`` of every layer's output channels;
    * ``"torchscript"`` / ``"torchscript int8"`` the fp32 and int8 models exported by :func:`export_torchscript`
      to ``folder`` and loaded back — what the clinic's runtime would run.

    Returns name → (callable model, sparsity report for the pruned ones, else None).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     out = variants(CompactUNet(widths=(4, 8)).eval(), [torch.rand(2, 1, 32, 32)], torch.rand(1, 1, 32, 32), folder)
        >>> list(out)
        ['fp32', 'int8', 'pruned', 'channels', 'torchscript', 'torchscript int8']
    """
    folder = Path(folder)
    base = copy.deepcopy(model).cpu().eval()
    int8 = quantise_int8(base, calibration_batches)
    pruned, pruned_report = prune(base, prune_amount)
    channels, channel_report = prune(base, channel_amount, structured=True)
    tag = type(base).__name__.lower()
    return {"fp32": (base, None), "int8": (int8, None), "pruned": (pruned.eval(), pruned_report),
            "channels": (channels.eval(), channel_report),
            "torchscript": (load_torchscript(export_torchscript(base, example, folder / f"{tag}_fp32.pt")), None),
            "torchscript int8": (load_torchscript(export_torchscript(int8, example, folder / f"{tag}_int8.pt")), None)}


def predict_labels(model, images: np.ndarray, batch_size: int = 16, device=None) -> np.ndarray:
    """Arg-max class per pixel for (N, H, W) images in [0, 1]: (N, H, W) int64. ``device`` None runs where the
    model's parameters are (the CPU for quantised and TorchScript models).

    Example:
        >>> predict_labels(CompactUNet(widths=(4, 8)), np.zeros((3, 16, 16), np.float32)).shape
        (3, 16, 16)
    """
    if device is None:
        params = list(model.parameters()) if isinstance(model, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    if hasattr(model, "eval"):
        model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size], np.float32))[:, None].to(device)
            out.append(model(x).argmax(1).cpu().numpy())
    return np.concatenate(out)


def mean_dice_of(model, images: np.ndarray, masks: np.ndarray, labels: Sequence[int] = (1, 2)) -> float:
    """Dice over ``labels`` (vertebral body, sacrum) per image, averaged over classes then images — the zoo's
    ``mean_dice`` for X-ray segmentation.

    Example:
        >>> m = np.zeros((1, 8, 8), np.uint8); m[0, 2:4, 2:4] = 1
        >>> round(mean_dice_of(lambda x: torch.nn.functional.one_hot(torch.from_numpy(m).long(), 3).permute(0, 3, 1, 2).float(),
        ...                    m.astype(np.float32), m, labels=(1,)), 3)
        1.0
    """
    from lumbarlab import metrics

    pred = predict_labels(model, images)
    return float(np.mean([metrics.mean_dice(t, p, labels=list(labels)) for t, p in zip(masks, pred, strict=True)]))


def comparison_rows(variants: dict[str, dict], baseline: str, reference_of: dict[str, str] | None = None) -> list[dict]:
    """The comparison table: one row per variant with parameters, FLOPs, latency (median, quartiles and IQR in
    ms, threads) and Dice (mean ± sd over seeds and a 95 % t-interval of the mean), plus the speed-up and the Dice
    change relative to its reference row — ``reference_of[name]``, else ``baseline`` (the plain fp32 eager model
    measured in the same run). With per-round times from one :func:`latency_table` session the speed-up is
    :func:`paired_speedup`'s median ratio with its bootstrap interval and verdict; without them, the ratio of the
    medians and no interval.

    Args:
        variants: name → ``{"parameters": int | None, "flops": int | None, "latency": Latency, "dice": [per seed],
            ...}`` (further keys, such as ``"model"`` or ``"step"``, are copied).
        baseline: the name of the default reference row.
        reference_of: name → the name of that row's reference (e.g. each network's own fp32 model).

    Example:
        >>> rows = comparison_rows({"a": {"parameters": 10, "flops": 100, "latency": Latency(2.0, 0.1, 2, 5),
        ...                               "dice": [0.8, 0.9]},
        ...                         "b": {"parameters": 1, "flops": 10, "latency": Latency(1.0, 0.1, 2, 5),
        ...                               "dice": [0.7, 0.7]}}, baseline="a")
        >>> rows[1]["speedup"], rows[1]["dice_mean"], rows[1]["reference"]
        (2.0, 0.7, 'a')
    """
    reference_of = reference_of or {}
    for ref in [baseline, *reference_of.values()]:
        if ref not in variants:
            raise LumbarLabError(f"baseline or reference {ref!r} is not among the variants {list(variants)}.")
    rows = []
    for name, v in variants.items():
        ref_name = reference_of.get(name, baseline)
        ref = variants[ref_name]
        ref_dice = np.asarray(ref.get("dice", []), float)
        d = np.asarray(v.get("dice", []), float)
        spread = seed_spread(d) if len(d) else None
        mean = None if spread is None else spread.mean
        sd = half = None  # JSON has no NaN: None where the seeds cannot give a number
        if spread is not None and spread.n > 1:
            sd, half = spread.sd, spread.half_width
        t: Latency = v["latency"]
        rt: Latency = ref["latency"]
        if t.times_ms and len(t.times_ms) == len(rt.times_ms):
            sp = paired_speedup(rt, t)
            speed = {"speedup": round(sp.median, 3), "speedup_ci95": [round(sp.lo, 3), round(sp.hi, 3)],
                     "speedup_q1_q3": [round(sp.q1, 3), round(sp.q3, 3)], "speedup_verdict": sp.verdict}
        else:
            speed = {"speedup": round(rt.median_ms / t.median_ms, 2), "speedup_ci95": None, "speedup_q1_q3": None,
                     "speedup_verdict": None}
        row = {"variant": name, **{k: val for k, val in v.items() if k not in ("latency", "dice")},
               "latency_median_ms": round(t.median_ms, 3),
               "latency_q1_ms": None if t.q1_ms is None else round(t.q1_ms, 3),
               "latency_q3_ms": None if t.q3_ms is None else round(t.q3_ms, 3),
               "latency_iqr_ms": round(t.iqr_ms, 3), "threads": t.threads, "runs": t.runs, "reference": ref_name,
               **speed,
               "dice_per_seed": [round(float(x), 4) for x in d], "dice_mean": None if mean is None else round(mean, 4),
               "dice_sd": None if sd is None else round(sd, 4),
               "dice_ci95": None if half is None else [round(mean - half, 4), round(mean + half, 4)],
               "dice_change": round(mean - float(ref_dice.mean()), 4) if len(d) and len(ref_dice) else None}
        rows.append(row)
    return rows
