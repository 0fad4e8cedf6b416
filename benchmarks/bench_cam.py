"""Grad-CAM speed: lumbarlab.explain against MONAI's GradCAM and against one plain forward pass.

Same model (MONAI DenseNet121, 2D, one input channel, 2 classes, 224² inputs), same layer
(``class_layers.relu``), same inputs, measured in the same process:

* per image: MONAI ``GradCAM`` vs ours (``lumbarlab.explain.class_activation_map``) vs one
  ``torch.no_grad`` forward pass — the floor for a CAM at the last feature layer;
* batched: our CAM throughput at batch 16 vs the model's training-step throughput (forward,
  backward, AdamW step) at the same batch.

Goals (issue #8): ≥ 10× MONAI per image on a GPU; within 1.3× of a forward pass on the CPU;
batched throughput ≥ 1/4 of the training step's.

    python benchmarks/bench_cam.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform

import torch
from _report import emit, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a CPU run under a minute")
    parser.add_argument("--out")
    args = parser.parse_args()

    from monai.networks.nets import DenseNet121
    from monai.visualize import GradCAM

    from lumbarlab.device import device_summary, get_device
    from lumbarlab.explain import class_activation_map

    device = get_device()
    gpu = device.type == "cuda"
    repeats = 20 if gpu else (5 if args.quick else 15)
    batch = 16
    torch.manual_seed(0)
    net = DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).to(device).eval()
    layer = "class_layers.relu"
    one = torch.rand(1, 1, 224, 224, device=device)
    many = torch.rand(batch, 1, 224, 224, device=device)
    monai_cam = GradCAM(nn_module=copy.deepcopy(net), target_layers=layer)  # MONAI keeps hooks on its module

    def forward():
        with torch.no_grad():
            net(one)

    t_forward = timed(forward, device, repeats, "median")
    t_monai = timed(lambda: monai_cam(one), device, repeats, "median")
    t_ours = timed(lambda: class_activation_map(net, one, layer), device, repeats, "median")
    t_ours_batch = timed(lambda: class_activation_map(net, many, layer), device, max(3, repeats // 4), "median")

    trainee = copy.deepcopy(net).train()
    optimizer = torch.optim.AdamW(trainee.parameters(), lr=1e-4)
    labels = torch.randint(0, 2, (batch,), device=device)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(trainee(many), labels).backward()
        optimizer.step()

    t_train = timed(train_step, device, max(3, repeats // 4), "median")
    agree = class_activation_map(net, one, layer).maps[0]
    ref = 1 - monai_cam(one)[0, 0].detach().cpu().numpy()  # MONAI's normalizer maps the maximum to 0
    cosine = float((agree * ref).sum() / ((agree**2).sum() ** 0.5 * (ref**2).sum() ** 0.5))

    result = {
        "benchmark": "cam", "device": device_summary(), "machine": {"cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(), "platform": platform.platform()},
        "model": "MONAI DenseNet121 2D, 1 channel, 2 classes", "image_size": [224, 224], "layer": layer,
        "forward_ms": round(1000 * t_forward, 2),
        "monai_gradcam_ms": round(1000 * t_monai, 2),
        "ours_gradcam_ms": round(1000 * t_ours, 2),
        "speedup_vs_monai": round(t_monai / t_ours, 2),
        "ours_over_forward": round(t_ours / t_forward, 2),
        "batch": batch,
        "ours_batched_img_per_s": round(batch / t_ours_batch, 1),
        "train_step_img_per_s": round(batch / t_train, 1),
        "batched_over_train_step": round(t_train / t_ours_batch, 2),
        "cosine_to_monai": round(cosine, 6),
        "goals": {"speedup_vs_monai_gpu": 10, "ours_over_forward_cpu_max": 1.3, "batched_over_train_step_min": 0.25},
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
