"""Phantom speed: one full case, lateral radiographs for a training set, 3D patches against a training
step. JSON out.

Budgets (issue #15, on a 2-core laptop CPU, the ``clinical`` preset): one case (CT + T1 + T2 + AP + lateral
+ labels) at 1 mm on 160×160×200 in ≤ 1.0 s after warm-up; ≥ 50 lateral radiographs of 256² (landmarks and
masks) per second; a CT patch generator that keeps a 3D UNet's training step (batch 2 × 64³) fed.
Measured in the same run: the ``teaching`` preset (the phantom before realism: the "before" of the issue),
the same case with every noise value drawn afresh by NumPy (``exact_noise=True``), a lateral radiograph made
the plain way — render the CT volume and project it — instead of the fast chord-length generator, and the
3D training step the patches feed.

    python benchmarks/bench_phantom.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from _report import emit


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and 200 radiographs")
    parser.add_argument("--out", help="write the JSON here as well as to stdout")
    args = parser.parse_args()

    start = time.perf_counter()
    from lumbarlab.phantom import make_case
    from lumbarlab.phantom.fast2d import lateral_radiographs
    import_s = time.perf_counter() - start

    from lumbarlab.phantom import sample_params
    from lumbarlab.phantom.fast2d import lateral_radiograph

    repeats = 3 if args.quick else 7
    cold = _timed(lambda: make_case(0), 1)[0]  # includes the one-off noise bank
    case_s = _timed(lambda: make_case(1, slip={"L4": 30}), repeats)
    teaching_s = _timed(lambda: make_case(sample_params(1, realism="teaching", slip={"L4": 30})), repeats)
    exact_s = _timed(lambda: make_case(1, slip={"L4": 30}, exact_noise=True), max(repeats // 2, 2))

    n = 200 if args.quick else 1000
    list(lateral_radiographs(5, seed=10_000))  # warm caches
    start = time.perf_counter()
    images = list(lateral_radiographs(n, seed=0, size=256))
    fast_total = time.perf_counter() - start
    assert all(r.image.shape == (256, 256) and len(r.corners) == 7 for r in images)
    teaching_params = [sample_params(i, realism="teaching") for i in range(n // 4)]
    start = time.perf_counter()
    for params in teaching_params:
        lateral_radiograph(params, size=256)
    teaching_per_image = (time.perf_counter() - start) / len(teaching_params)
    plain = _timed(lambda: make_case(2, modalities=("xray",)), 3)

    patches = _patch_feed(quick=args.quick)
    case_median = statistics.median(case_s)
    per_image = fast_total / n
    result = {
        "benchmark": "phantom",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "import_seconds": round(import_s, 3),
        "full_case": {
            "grid": [160, 160, 200], "spacing_mm": 1.0,
            "median_seconds": round(case_median, 4), "all_seconds": [round(t, 4) for t in case_s],
            "first_case_seconds_including_noise_bank": round(cold, 4),
            "budget_seconds": 1.0, "within_budget": case_median <= 1.0,
            "teaching_preset_median_seconds": round(statistics.median(teaching_s), 4),
            "baseline_exact_numpy_noise_median_seconds": round(statistics.median(exact_s), 4),
            "speedup_vs_exact_noise": round(statistics.median(exact_s) / case_median, 2),
        },
        "lateral_radiographs": {
            "count": n, "size": 256, "total_seconds": round(fast_total, 3),
            "per_image_ms": round(1000 * per_image, 2),
            "projected_seconds_per_1000": round(1000 * per_image, 2),
            "images_per_second": round(1.0 / per_image, 1),
            "budget_images_per_second": 50.0, "within_budget": 1.0 / per_image >= 50.0,
            "teaching_preset_per_image_ms": round(1000 * teaching_per_image, 2),
            "baseline_render_volume_and_project_seconds_per_image": round(statistics.median(plain), 4),
            "speedup_vs_volume_projection": round(statistics.median(plain) / per_image, 1),
        },
        "ct_patches": patches,
    }
    emit(result, args.out)


def _patch_feed(quick: bool) -> dict:
    """Seconds per 64³ patch — first epoch: render a clinical CT case at 1.5 mm (96×96×120) and cut four
    patches from it; later epochs: the rendered volumes are kept (PatchDataset) and only new crops are cut —
    against one training step of the lab's tiny 3D UNet on a batch of two such patches. A generator that takes
    less time per batch than the step keeps the model fed."""
    import numpy as np
    import torch

    from lumbarlab.datasets.volumes import PatchDataset, VolumeDataset, phantom_volumes
    from lumbarlab.models import build_model

    cases = 2 if quick else 4
    start = time.perf_counter()
    data = VolumeDataset(phantom_volumes(cases, seed=300, modality="ct", shape=(96, 96, 120), spacing=1.5))
    patches = PatchDataset(data, patch=(64, 64, 64), per_volume=4, seed=0)
    _ = [patches[i] for i in range(len(patches))]
    per_patch = (time.perf_counter() - start) / len(patches)
    start = time.perf_counter()  # later epochs: the volumes are kept, only the crops are new
    _ = [patches[i] for i in range(len(patches))]
    per_patch_cached = (time.perf_counter() - start) / len(patches)
    torch.manual_seed(0)
    model = build_model("segmentation", "unet", spatial_dims=3, size="tiny", out_channels=7)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.from_numpy(np.stack([patches[0][0].numpy(), patches[1][0].numpy()]))
    y = torch.randint(0, 7, (2, 64, 64, 64))
    steps = []
    for _ in range(2 if quick else 4):
        start = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        steps.append(time.perf_counter() - start)
    step = statistics.median(steps[1:])
    return {
        "case": {"grid": [96, 96, 120], "spacing_mm": 1.5, "patch": [64, 64, 64], "patches_per_case": 4},
        "first_epoch_seconds_per_patch": round(per_patch, 4), "seconds_per_batch_of_2": round(2 * per_patch, 4),
        "later_epochs_seconds_per_patch": round(per_patch_cached, 5),
        "baseline_unet3d_train_step_seconds_batch_2": round(step, 4),
        "first_epoch_generator_to_step_ratio": round(2 * per_patch / step, 3),
        "later_epochs_generator_to_step_ratio": round(2 * per_patch_cached / step, 4),
        "keeps_up": 2 * per_patch_cached <= step,
    }


if __name__ == "__main__":
    main()
