"""Inference speed: lumbarlab's Predictor against the plain MONAI-tutorial loop, same model and data.

Baseline: eager fp32, one image per forward pass under ``torch.no_grad()`` — the way the MONAI
tutorials run inference. Ours: :class:`lumbarlab.infer.Predictor` (batched, inference mode;
on CUDA also bf16 autocast and channels-last, and optionally ``torch.compile``). Both run in
the same process on the same inputs; the JSON reports images per second and the ratio.

Model: MONAI 2D UNet, channels 16–256, 2 residual units, 256² inputs (the issue's reference).
On a GPU the 3D sliding window (160³ volume, 96³ window) is timed too.

    python benchmarks/bench_infer.py [--quick] [--compile] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import platform

import torch
from _report import emit, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a CPU run under a minute")
    parser.add_argument("--compile", action="store_true", help="also time the predictor with torch.compile")
    parser.add_argument("--out")
    args = parser.parse_args()

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
    emit(result, args.out)


if __name__ == "__main__":
    main()
