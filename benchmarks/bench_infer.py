"""Inference speed: lumbarlab's Predictor against the plain MONAI-tutorial loop, same model and data.

Baseline: eager fp32, one image per forward pass under ``torch.no_grad()`` — the way the MONAI
tutorials run inference. Ours: :class:`lumbarlab.infer.Predictor` (batched, inference mode;
on CUDA also bf16 autocast and channels-last, and optionally ``torch.compile``). Both run in
the same process on the same inputs; the JSON reports images per second and the ratio.

Model: MONAI 2D UNet, channels 16–256, 2 residual units, 256² inputs (the issue's reference).
On a GPU the 3D sliding window (160³ volume, 96³ window) is timed too.

3D case (every device): the ``ct-vertebrae`` network over a phantom abdominal CT with a clinical field of view
(376 × 376 × 250 mm: a 300 × 300 × 200 CT of 1.25 mm voxels) on the model's 2 mm grid, 188 × 188 × 125 voxels
(``--quick``: 120 × 120 × 100). Baseline: MONAI's ``sliding_window_inference`` over the whole volume (the
recipe's windows, 4 per batch, overlap 0.25, ``torch.no_grad``), as MONAI's tutorials call it. Ours:
:func:`lumbarlab.segment.predict_in_body` (the same sliding windows over the body's box only, inference mode).
Peak memory of each is measured in its own child process (``ru_maxrss``, which includes the ~0.4 GB of
Python, torch and MONAI themselves).

    python benchmarks/bench_infer.py [--quick] [--compile] [--only-3d] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import torch
from _report import emit, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a CPU run under a minute")
    parser.add_argument("--compile", action="store_true", help="also time the predictor with torch.compile")
    parser.add_argument("--only-3d", action="store_true", help="only the 3D ct-vertebrae case")
    parser.add_argument("--child-3d", choices=["plain", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child_3d:
        print(json.dumps(_run_3d(args.child_3d, args.quick)))
        return
    if args.only_3d:
        emit(bench_3d(args.quick), args.out)
        return

    from monai.networks.nets import UNet

    from lumbarlab.device import device_summary, get_device
    from lumbarlab.infer import Predictor

    device = get_device()
    gpu = device.type == "cuda"
    n = 256 if gpu else (16 if args.quick else 48)
    batch = 64 if gpu else None  # None: the predictor's CPU default (4)
    torch.manual_seed(0)
    net = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
               num_res_units=2).to(device).eval()
    images = torch.rand(n, 1, 256, 256)

    def plain():
        with torch.no_grad():
            for i in range(n):
                net(images[i : i + 1].to(device)).argmax(1).cpu()

    predictor = Predictor(net, output="labels", batch_size=batch)
    result = {"benchmark": "infer", "device": device_summary(), "machine": {"cpu_count": os.cpu_count(),
              "platform": platform.platform()}, "model": "MONAI UNet 2D 16-256, 2 res units", "images": n,
              "image_size": [256, 256]}
    t_plain = timed(plain, device, 2 if not gpu else 3)
    t_ours = timed(lambda: predictor(images), device, 2 if not gpu else 3)
    result["plain_monai_img_per_s"] = round(n / t_plain, 1)
    result["predictor_img_per_s"] = round(n / t_ours, 1)
    result["predictor_batch_size"] = predictor.batch_size
    result["speedup"] = round(t_plain / t_ours, 2)
    with torch.no_grad():  # the predictor must agree with the eager model
        ref = net(images[:4].to(device)).argmax(1).cpu()
    result["agreement_first4"] = float((torch.as_tensor(predictor(images[:4])) == ref).float().mean())
    if args.compile:
        compiled = Predictor(net, output="labels", batch_size=batch, compile=True)
        t_c = timed(lambda: compiled(images), device)
        result["predictor_compiled_img_per_s"] = round(n / t_c, 1)
        result["speedup_compiled"] = round(t_plain / t_c, 2)
    if gpu and not args.quick:
        net3d = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256),
                     strides=(2, 2, 2, 2), num_res_units=2).to(device).eval()
        vol = torch.rand(1, 1, 160, 160, 160)

        def plain3d():
            from monai.inferers import sliding_window_inference

            with torch.no_grad():
                sliding_window_inference(vol.to(device), (96, 96, 96), 1, net3d)

        p3 = Predictor(net3d, spatial_dims=3, output="labels", roi_size=(96, 96, 96), batch_size=8)
        result["sliding_window_160_roi96_plain_ms"] = round(1000 * timed(plain3d, device), 1)
        result["sliding_window_160_roi96_predictor_ms"] = round(1000 * timed(lambda: p3(vol), device), 1)
    result["ct_vertebrae_3d"] = bench_3d(args.quick)
    emit(result, args.out)


def _phantom_grid(quick: bool):
    from lumbarlab.phantom import make_case
    from lumbarlab.zoo import RECIPES

    shape = (120, 120, 100) if quick else (188, 188, 125)
    return make_case(900_500, shape=shape, spacing=RECIPES["ct-vertebrae"].spacing, modalities=("ct",)).ct


def _run_3d(variant: str, quick: bool) -> dict:
    """One variant in this process: seconds per volume (fastest of 2 after a warm-up), peak RSS, labels' hash."""
    import resource

    import numpy as np

    from lumbarlab.datasets import normalize_ct
    from lumbarlab.device import get_device
    from lumbarlab.infer import Predictor
    from lumbarlab.segment import body_box, predict_in_body
    from lumbarlab.zoo import RECIPES, entries, load
    from lumbarlab.zoo.store import build

    device = get_device()
    recipe = RECIPES["ct-vertebrae"]
    net = (load(recipe.name) if recipe.name in entries() else build(recipe)).to(device).eval()
    hu = _phantom_grid(quick).array
    box = body_box(hu)
    if variant == "plain":
        from monai.inferers import sliding_window_inference

        x = torch.from_numpy(normalize_ct(hu))[None, None]

        def run():
            with torch.no_grad():
                return sliding_window_inference(x.to(device), recipe.patch, 4, net, overlap=0.25).argmax(1)[0].cpu().numpy()
    else:
        predictor = Predictor(net, spatial_dims=3, output="labels", roi_size=recipe.patch, device=device)

        def run():
            return predict_in_body(predictor, hu, normalize_ct)

    labels = run()
    seconds = timed(run, device, 2)
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "shape": list(hu.shape), "body_box_fraction": round(float(np.prod([b.stop - b.start for b in box]) / hu.size), 3),
            "vertebra_voxels": int((np.asarray(labels) > 0).sum()), "labels_file": _save(labels, variant)}


def _save(labels, variant: str) -> str:
    import tempfile

    import numpy as np

    path = os.path.join(tempfile.gettempdir(), f"bench_infer3d_{variant}_{os.getpid()}.npy")
    np.save(path, np.asarray(labels, np.uint8))
    return path


def bench_3d(quick: bool) -> dict:
    """Both variants, each in a child process of its own (peak memory apart), their ratio, and the share of
    vertebra voxels (either variant's) they label alike."""
    from lumbarlab.device import device_summary

    out = {}
    for variant in ("plain", "ours"):
        cmd = [sys.executable, __file__, "--child-3d", variant] + (["--quick"] if quick else [])
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[variant] = json.loads(res.stdout.strip().splitlines()[-1])
    return {"device": device_summary(), "model": "ct-vertebrae (MONAI UNet 3D, 8-128 channels)", "input_equivalent": "300 x 300 x 200 CT at 1.25 mm",
            "volume_shape": out["plain"]["shape"], "spacing_mm": _recipe().spacing, "roi": list(_recipe().patch),
            "overlap": 0.25,
            "body_box_fraction": out["ours"]["body_box_fraction"],
            "plain_monai_seconds": out["plain"]["seconds"], "predict_in_body_seconds": out["ours"]["seconds"],
            "speedup": round(out["plain"]["seconds"] / out["ours"]["seconds"], 2),
            "plain_monai_peak_rss_mb": out["plain"]["peak_rss_mb"], "predict_in_body_peak_rss_mb": out["ours"]["peak_rss_mb"],
            "vertebra_voxels": {k: v["vertebra_voxels"] for k, v in out.items()},
            "label_agreement": _agreement(out["plain"]["labels_file"], out["ours"]["labels_file"])}


def _recipe():
    from lumbarlab.zoo import RECIPES

    return RECIPES["ct-vertebrae"]


def _agreement(a: str, b: str) -> float:
    """Share of voxels labelled alike by both variants (windows placed over the body's box fall elsewhere than
    over the whole volume, so a few boundary voxels may differ)."""
    import numpy as np

    x, y = np.load(a), np.load(b)
    os.remove(a)
    os.remove(b)
    fg = (x > 0) | (y > 0)
    return round(float((x[fg] == y[fg]).mean()) if fg.any() else 1.0, 4)


if __name__ == "__main__":
    main()
