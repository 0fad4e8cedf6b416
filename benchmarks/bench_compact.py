"""Compact networks on the CPU: a large and a compact segmenter trained alike, then int8, pruning and export.

The comparison of lesson 21 (``notebooks/21_compact_networks.ipynb``) as a table: MONAI's UNet (16–256 channels,
two residual units; ``lumbarlab.compact.matched_pair``) against a depthwise-separable ``CompactUNet`` (16–128
channels), both trained on the same phantom radiographs (vertebral body / sacrum / background; 96 px quick,
128 px full — the lesson's FAST and full modes) for the
same number of optimiser steps, with the same optimiser, learning rate and seeds. Each trained network then goes
through every compression step of ``lumbarlab.compact.variants`` (static int8 by FX graph mode on the x86 engine;
global L1 unstructured pruning; L1 channel pruning; TorchScript fp32 and int8; for the large U-Net also int8 of its
convolutions and instance norms only), and for each: parameters, FLOPs,
batch-1 latency on the CPU (median, q1 and q3, threads stated) and test Dice (mean ± sd over seeds, 95 %
t-interval). All models are timed in one interleaved session; a row's ``speedup`` is the median of its per-round
time ratios to its ``reference`` — the same network's plain fp32 eager model, and for the compact fp32 row the large
fp32 one — with a bootstrap 95 % interval (``speedup_ci95``) and a verdict ("cannot tell" when it contains 1).
A "slimmed" row per network times the same design with 25 % fewer channels in every level (untrained: a
narrower network, not the pruned one with its channels cut out), latency only.

Latency is measured on the CPU even when a GPU trained the networks. The machine's load average is recorded
before and after: on a shared machine every latency is inflated and noisy.

    python benchmarks/bench_compact.py [--quick] [--threads N] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch
from _report import emit

# the lesson's two modes: QUICK = its FAST mode, FULL = its full mode
QUICK = dict(size=96, n_train=128, n_test=24, epochs=6, seeds=2, runs=40, calibration=2)
FULL = dict(size=128, n_train=480, n_test=96, epochs=12, seeds=3, runs=100, calibration=4)
BATCH, LR = 8, 1e-2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the lesson's FAST mode: 2 seeds, 96 px, 128 training images")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the latency runs (default: torch's)")
    parser.add_argument("--out")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL

    from lumbarlab import compact
    from lumbarlab.datasets import phantom_xrays
    from lumbarlab.device import device_summary, get_device
    from lumbarlab.models import describe

    started = time.perf_counter()
    load_before = os.getloadavg()
    threads = args.threads or torch.get_num_threads()
    size = cfg["size"]
    train = phantom_xrays(cfg["n_train"], seed=100_000, size=size)
    test = phantom_xrays(cfg["n_test"], seed=900_000, size=size)
    shape = (1, 1, size, size)
    example = torch.from_numpy(test.images[:1])[:, None]
    calibration = [torch.from_numpy(train.images[i:i + BATCH])[:, None] for i in range(0, cfg["calibration"] * BATCH, BATCH)]
    steps = cfg["epochs"] * (cfg["n_train"] // BATCH)
    step_ms = {name: round(compact.training_step_ms(net.to(get_device()), BATCH, size), 1)
               for name, net in compact.matched_pair().items()}

    table: dict[str, dict] = {}
    timed: dict[str, object] = {}  # the first seed's models: latency does not depend on the weights
    losses: dict[str, list] = {}
    folder = tempfile.mkdtemp(prefix="bench_compact_")
    for k in range(cfg["seeds"]):
        seed = k
        for name in ("large", "compact"):
            torch.manual_seed(seed)  # the initial weights follow the seed too, as in the lesson
            net = compact.matched_pair()[name]
            history = compact.train_segmenter(net, train, cfg["epochs"], BATCH, LR, seed=seed)
            losses.setdefault(name, []).append([round(x, 4) for x in history.train_loss])
            summary = describe(net.cpu(), shape)
            steps_of = compact.variants(net, calibration, example, folder)
            if name == "large":  # as in the lesson: int8 for the convolutions (and instance norms) only
                steps_of["int8 conv"] = (compact.quantise_int8(net, calibration, only=(torch.nn.Conv2d, torch.nn.InstanceNorm2d)),
                                         None)
            for step, (model, report) in steps_of.items():
                row = table.setdefault(f"{name} {step}", {"network": name, "step": step, "parameters": summary.parameters,
                                                          "flops": summary.flops, "dice": []})
                row["dice"].append(compact.mean_dice_of(model, test.images, test.masks))
                if report is not None and k == 0:
                    row["zero_weights"] = round(report.fraction, 4)
                    row["zero_channels"] = f"{report.channels_zeroed}/{report.channels}"
                if k == 0:
                    timed[f"{name} {step}"] = model
    for name, net in compact.matched_pair().items():
        slim = compact.slimmed(net, 0.75).eval()
        s = describe(slim, shape)
        key = f"{name} slimmed 75 % channels (latency only)"
        table[key] = {"network": name, "step": "slimmed", "parameters": s.parameters, "flops": s.flops, "dice": []}
        timed[key] = slim
    # every model timed interleaved in one session: a burst of load on the shared CPU hits all rows alike
    for key, t in compact.latency_table(timed, shape, runs=cfg["runs"], warmup=5, threads=threads).items():
        table[key]["latency"] = t

    reference_of = {key: (f"{row['network']} fp32" if key != f"{row['network']} fp32" else "large fp32")
                    for key, row in table.items()}
    rows = compact.comparison_rows(table, baseline="large fp32", reference_of=reference_of)
    result = {
        "benchmark": "compact", "device": device_summary(),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "quantized_engine": torch.backends.quantized.engine,
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                    "note": "latency on a CPU shared with other jobs: medians inflated, IQRs wide"},
        "mode": "quick" if args.quick else "full", "task": f"X-ray vertebra segmentation, 3 classes, {size} px, phantom",
        "train_images": cfg["n_train"], "test_images": cfg["n_test"], "seeds": list(range(cfg["seeds"])),
        "optimiser_steps": steps, "batch_size": BATCH, "lr": LR, "training_step_ms": step_ms,
        "latency": {"input": list(shape), "threads": threads, "runs": cfg["runs"], "warmup": 5,
                    "method": "all models interleaved round by round in one session (compact.latency_table): "
                              "median, q1, q3; speedup = median of per-round ratios to the reference row, "
                              "bootstrap 95 % interval (compact.paired_speedup)"},
        "baseline": "each network's own fp32 eager model; for compact fp32, large fp32 (MONAI UNet, eager, float32)", "rows": rows, "train_loss_per_epoch": losses,
        "seconds": round(time.perf_counter() - started, 1)}
    emit(result, args.out)


if __name__ == "__main__":
    main()
