"""lumbarlab.compact: the matched pair really differs, latency is a sane measurement, int8 stays close to fp32,
pruning hits the requested sparsity, exports reload to the same outputs. Speed itself is never asserted."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lumbarlab import compact
from lumbarlab.errors import LumbarLabError
from lumbarlab.models import describe


def _trained_like(net: torch.nn.Module) -> torch.nn.Module:
    """BatchNorm statistics from a few batches, so that the network's activations have realistic ranges."""
    torch.manual_seed(0)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(4, 1, 64, 64))
    return net.eval()


def test_the_pair_differs_tenfold_in_parameters_and_flops():
    pair = compact.matched_pair()
    large, small = (describe(pair[k], (1, 1, 64, 64)) for k in ("large", "compact"))  # ratios hold at any size
    assert large.parameters >= 10 * small.parameters
    assert large.flops >= 10 * small.flops
    for net in pair.values():  # the same task: three classes at the input's size
        assert net.eval()(torch.zeros(1, 1, 64, 64)).shape == (1, 3, 64, 64)


def test_separable_flops_formula_matches_pytorch_counter():
    from torch.utils.flop_counter import FlopCounterMode

    block = compact.SeparableConv(16, 32).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        block[0](torch.zeros(1, 16, 20, 20))
        block[3](torch.zeros(1, 16, 20, 20))
    assert counter.get_total_flops() == compact.separable_flops(16, 32, 3, 20, 20)
    assert compact.standard_flops(16, 32, 3, 20, 20) / compact.separable_flops(16, 32, 3, 20, 20) == pytest.approx(
        1 / (1 / 32 + 1 / 9))


def test_latency_is_positive_finite_with_the_requested_threads():
    before = torch.get_num_threads()
    t = compact.latency(compact.CompactUNet(widths=(4, 8)), (1, 1, 32, 32), runs=6, warmup=1, threads=1)
    assert t.threads == 1 and t.runs == 6
    assert math.isfinite(t.median_ms) and t.median_ms > 0
    assert math.isfinite(t.iqr_ms) and t.iqr_ms >= 0
    assert torch.get_num_threads() == before  # restored
    assert compact.latency(torch.nn.Identity(), (1, 4), runs=3, warmup=0).threads == before
    with pytest.raises(LumbarLabError, match="runs"):
        compact.latency(torch.nn.Identity(), (1, 4), runs=0)


def test_latency_table_times_every_model_interleaved():
    calls: list[str] = []

    class Spy(torch.nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append(self.name)
            return x

    out = compact.latency_table({"a": Spy("a"), "b": Spy("b"), "c": Spy("c")}, (1, 2), runs=11, warmup=1, threads=1)
    rounds = [calls[k:k + 3] for k in range(0, len(calls), 3)]
    assert len(rounds) == 12 and all(sorted(r) == ["a", "b", "c"] for r in rounds)  # every model once a round
    assert len({r[0] for r in rounds}) == 3  # the order is shuffled: each model runs first in some round
    calls.clear()
    compact.latency_table({"a": Spy("a"), "b": Spy("b"), "c": Spy("c")}, (1, 2), runs=11, warmup=1, threads=1)
    assert [calls[k:k + 3] for k in range(0, len(calls), 3)] == rounds  # … and seeded: the same order again
    assert all(t.runs == 11 and t.threads == 1 and t.median_ms > 0 for t in out.values())
    with pytest.raises(LumbarLabError, match="at least one"):
        compact.latency_table({}, (1, 2))


@pytest.mark.parametrize("widths", [(8, 16, 32)])
def test_int8_output_close_to_fp32(widths):
    """Static int8 of the compact net: logits within 10 % of their range of the fp32 ones on the calibration
    images, and the same class for ≥ 95 % of pixels. Quantisation steps are about range / 255 per layer."""
    net = _trained_like(compact.CompactUNet(widths=widths))
    torch.manual_seed(1)
    x = torch.rand(4, 1, 64, 64)
    q = compact.quantise_int8(net, [x[:2], x[2:]])
    with torch.no_grad():
        ref, out = net(x), q(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    span = float(ref.max() - ref.min())
    assert float((out - ref).abs().max()) <= 0.1 * span
    assert float((out.argmax(1) == ref.argmax(1)).float().mean()) >= 0.95
    assert any("quantized" in type(m).__module__ for m in q.modules())  # int8 kernels really run
    with pytest.raises(LumbarLabError, match="calibration"):
        compact.quantise_int8(net, [])
    with pytest.raises(LumbarLabError, match="engine"):
        compact.quantise_int8(net, [x], engine="tpu")


def test_dynamic_quantisation_touches_linear_layers_only():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 6, 4)).eval()
    q = compact.quantise_dynamic(net)
    assert type(q[0]) is torch.nn.Conv2d and "dynamic" in type(q[2]).__module__
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(q(x), net(x), atol=0.05)


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.9])
def test_unstructured_pruning_reaches_exactly_the_requested_sparsity(amount):
    net = compact.CompactUNet(widths=(8, 16, 32))
    pruned, report = compact.prune(net, amount)
    assert report.pruned == round(amount * report.total)
    assert report.fraction == pytest.approx(amount, abs=1 / report.total)
    assert compact.sparsity(net).pruned == 0  # the input model is untouched
    head = pruned.head.weight
    assert int((head == 0).sum()) == 0  # the output layer stays whole
    assert not any(n.endswith("_orig") for n, _ in pruned.named_parameters())  # permanent: plain weights again


def test_structured_pruning_zeroes_whole_channels():
    net = compact.matched_pair()["large"]
    pruned, report = compact.prune(net, 0.25, structured=True)
    layers = compact._prunable(pruned)
    expected = sum(round(0.25 * m.weight.shape[compact._out_dim(m)]) for _, m in layers)
    assert report.channels_zeroed == expected
    assert 0 < report.fraction < 0.5
    with pytest.raises(LumbarLabError, match="fraction"):
        compact.prune(net, 1.0)


def test_torchscript_export_reloads_to_the_same_output(tmp_path):
    net = _trained_like(compact.CompactUNet(widths=(8, 16, 32)))
    x = torch.rand(1, 1, 64, 64)
    path = compact.export_torchscript(net, x, tmp_path / "compact.pt")
    assert path.exists() and not list(tmp_path.glob(".*tmp*"))  # renamed into place, nothing left over
    loaded = compact.load_torchscript(path)
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-5)
        y = torch.rand(1, 1, 64, 64)  # a new input, not the traced one
        assert torch.allclose(loaded(y), net(y), atol=1e-5)
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(LumbarLabError, match="TorchScript"):
        compact.load_torchscript(tmp_path / "junk.pt")


def test_quantised_model_exports_to_torchscript(tmp_path):
    net = _trained_like(compact.CompactUNet(widths=(8, 16)))
    x = torch.rand(2, 1, 32, 32)
    q = compact.quantise_int8(net, [x])
    loaded = compact.load_torchscript(compact.export_torchscript(q, x[:1], tmp_path / "int8.pt"))
    with torch.no_grad():
        assert torch.allclose(loaded(x[:1]), q(x[:1]), atol=1e-5)


def test_onnx_export_or_a_clear_message(tmp_path):
    net = compact.CompactUNet(widths=(4, 8)).eval()
    x = torch.rand(1, 1, 32, 32)
    if compact.onnx_available():
        assert compact.export_onnx(net, x, tmp_path / "c.onnx").exists()
    else:
        with pytest.raises(LumbarLabError, match="pip install onnx"):
            compact.export_onnx(net, x, tmp_path / "c.onnx")


def test_dice_and_comparison_rows():
    masks = np.zeros((2, 16, 16), np.uint8)
    masks[:, 4:8, 4:8] = 1
    masks[:, 10:14, 2:6] = 2

    def perfect(x):
        idx = torch.from_numpy(masks[: len(x)]).long()
        return torch.nn.functional.one_hot(idx, 3).permute(0, 3, 1, 2).float()

    assert compact.mean_dice_of(perfect, masks.astype(np.float32), masks) == 1.0
    lat = compact.Latency(4.0, 0.5, 2, 10)
    rows = compact.comparison_rows({"fp32": {"parameters": 100, "latency": lat, "dice": [0.8, 0.9, 0.85]},
                                    "int8": {"parameters": 100, "latency": compact.Latency(2.0, 0.2, 2, 10),
                                             "dice": [0.8, 0.88, 0.84]}}, "fp32")
    assert [r["variant"] for r in rows] == ["fp32", "int8"]
    assert rows[1]["speedup"] == 2.0 and rows[1]["dice_change"] == pytest.approx(-0.01, abs=1e-4)
    low, high = rows[0]["dice_ci95"]
    assert low < rows[0]["dice_mean"] < high
    assert rows[0]["dice_sd"] == pytest.approx(0.05, abs=1e-4)
    with pytest.raises(LumbarLabError, match="baseline"):
        compact.comparison_rows({"a": {"latency": lat, "dice": [1.0]}}, "b")


def test_latency_keeps_quartiles_and_per_round_times():
    out = compact.latency_table({"a": torch.nn.Identity(), "b": torch.nn.Conv2d(1, 2, 3)}, (1, 1, 8, 8), runs=7,
                                warmup=1, threads=1)
    for t in out.values():
        assert len(t.times_ms) == 7 and t.q1_ms <= t.median_ms <= t.q3_ms
        assert t.iqr_ms == pytest.approx(t.q3_ms - t.q1_ms)


def test_latency_does_not_move_or_replace_the_callers_model():
    net = torch.nn.Conv2d(1, 2, 3)
    weight = net.weight
    compact.latency(net, (1, 1, 8, 8), runs=2, warmup=0)
    assert net.weight is weight and net.weight.device.type == "cpu"


def test_paired_speedup_ratio_interval_and_verdict():
    base = compact.Latency(2.0, 0.0, 1, 6, times_ms=(2.0, 4.0, 2.2, 1.8, 2.1, 6.0))
    twice = compact.Latency(1.0, 0.0, 1, 6, times_ms=(1.0, 2.0, 1.1, 0.9, 1.05, 3.0))  # half of each round
    s = compact.paired_speedup(base, twice)
    assert s.median == pytest.approx(2.0) and s.lo == pytest.approx(2.0) and s.verdict == "faster"
    same = compact.paired_speedup(base, compact.Latency(2.0, 0.0, 1, 6, times_ms=(1.8, 4.4, 2.0, 2.0, 2.3, 5.5)))
    assert same.lo <= 1 <= same.hi and same.verdict == "cannot tell"
    with pytest.raises(LumbarLabError, match="one latency_table session"):
        compact.paired_speedup(base, compact.Latency(1.0, 0.0, 1, 2, times_ms=(1.0, 1.0)))
    rows = compact.comparison_rows({"a": {"latency": base, "dice": []}, "b": {"latency": twice, "dice": []}}, "a")
    assert rows[1]["speedup"] == pytest.approx(2.0) and rows[1]["speedup_verdict"] == "faster"


def test_quantise_int8_restores_the_global_engine():
    before = torch.backends.quantized.engine
    net = _trained_like(compact.CompactUNet(widths=(4, 8)))
    other = next(e for e in torch.backends.quantized.supported_engines if e not in (before, "none")) \
        if len(torch.backends.quantized.supported_engines) > 2 else before
    compact.quantise_int8(net, [torch.rand(2, 1, 32, 32)], engine=other)
    assert torch.backends.quantized.engine == before


def test_structured_pruning_silences_channels_through_batchnorm():
    net = _trained_like(compact.CompactUNet(widths=(8, 16)))
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.uniform_(bn.bias, 0.5, 1.0)  # a shift that would leak through a zeroed conv channel
    pruned, _ = compact.prune(net, 0.25, structured=True)
    stem_conv = pruned.stem[0]
    dead = (stem_conv.weight.flatten(1) == 0).all(1)
    assert dead.any()
    with torch.no_grad():
        out = pruned.stem(torch.rand(2, 1, 32, 32))
    assert float(out[:, dead].abs().max()) == 0.0  # exactly what cutting the channel out would give


def test_comparison_rows_per_row_reference():
    t = {k: compact.Latency(m, 0.0, 1, 3, m, m, (m, m, m)) for k, m in (("L", 4.0), ("L q", 8.0), ("C", 1.0))}
    rows = compact.comparison_rows({k: {"latency": v, "dice": [0.5]} for k, v in t.items()}, "L",
                                   reference_of={"L q": "L", "C": "L"})
    assert {r["variant"]: r["speedup"] for r in rows} == {"L": 1.0, "L q": 0.5, "C": 4.0}
    assert rows[1]["latency_q1_ms"] == 8.0 and rows[1]["speedup_verdict"] == "slower"
