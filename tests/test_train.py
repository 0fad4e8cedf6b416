"""The training loop: loss falls on phantom tasks, checkpoints are atomic and resumable, DDP agrees."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from torch.utils.data import DataLoader, TensorDataset

from lumbarlab.errors import LumbarLabError
from lumbarlab.models import build_model
from lumbarlab.phantom.fast2d import lateral_radiographs
from lumbarlab.train import fit, load_checkpoint


@pytest.fixture(scope="module")
def radiographs():
    rads = list(lateral_radiographs(24, seed=3, size=64))
    x = torch.tensor(np.stack([r.image for r in rads]))[:, None]
    mask = torch.tensor(np.stack([(r.body_labels > 0) for r in rads]).astype(np.int64))
    cls = torch.tensor([int(max(r.truth["slip_percent"].values()) >= 5) for r in rads])
    return x, mask, cls


@pytest.mark.parametrize("task,arch", [("segmentation", "unet"), ("classification", "mobilenet"), ("classification", "resnet")])
def test_loss_falls_on_phantom(radiographs, task, arch):
    x, mask, cls = radiographs
    target = mask if task == "segmentation" else cls
    net = build_model(task, arch, size="tiny", out_channels=2)
    loader = DataLoader(TensorDataset(x, target), batch_size=8, shuffle=True)
    history = fit(net, loader, torch.nn.functional.cross_entropy, epochs=6, lr=3e-3, progress=False, seed=1)
    assert history.train_loss[-1] < 0.8 * history.train_loss[0]


def test_checkpoints_resume_and_early_stop(radiographs, tmp_path):
    x, mask, _ = radiographs
    loader = DataLoader(TensorDataset(x, mask), batch_size=8)
    metric = lambda out, t: -torch.nn.functional.cross_entropy(out, t).item()  # noqa: E731
    net = build_model("segmentation", size="tiny")
    h = fit(net, loader, torch.nn.functional.cross_entropy, epochs=2, val_loader=loader, metric_fn=metric,
            out_dir=tmp_path, progress=False)
    assert {p.name for p in tmp_path.iterdir()} == {"best.pt", "last.pt", "history.json"}
    state = load_checkpoint(tmp_path / "best.pt")
    assert state["epoch"] == h.best_epoch
    resumed = fit(net, loader, torch.nn.functional.cross_entropy, epochs=4, val_loader=loader, metric_fn=metric,
                  out_dir=tmp_path, resume=True, progress=False)
    assert len(resumed.train_loss) == 4 and resumed.train_loss[:2] == h.train_loss
    stopped = fit(build_model("segmentation", size="tiny"), loader, torch.nn.functional.cross_entropy, epochs=30,
                  val_loader=loader, metric_fn=lambda o, t: 0.0, patience=2, progress=False)
    assert stopped.stopped_early and len(stopped.train_loss) == 3


def test_bad_use_is_explained(tmp_path):
    net = torch.nn.Linear(2, 1)
    loader = DataLoader(TensorDataset(torch.zeros(4, 2), torch.zeros(4, 1)), batch_size=2)
    with pytest.raises(LumbarLabError, match="resume"):
        fit(net, loader, torch.nn.functional.mse_loss, epochs=1, out_dir=tmp_path, resume=True)
    with pytest.raises(LumbarLabError, match="val_loader"):
        fit(net, loader, torch.nn.functional.mse_loss, epochs=1, val_loader=loader)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(LumbarLabError, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt")


def test_two_process_ddp_ends_with_identical_weights(tmp_path):
    env = {**os.environ, "LUMBARLAB_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(REPO / "tests" / "ddp_train.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=180, env=env, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert not torch.allclose(a["weight"], torch.zeros_like(a["weight"]))


def test_denoiser_and_registration_losses_fall_on_phantom(radiographs):
    """The remaining tasks train too: DnCNN removes added noise; LocalNet aligns a shifted radiograph."""
    x, _, _ = radiographs
    torch.manual_seed(0)
    noisy = x + 0.1 * torch.randn_like(x)
    dncnn = build_model("reconstruction", size="tiny")
    history = fit(dncnn, DataLoader(TensorDataset(noisy, x), batch_size=8, shuffle=True), torch.nn.functional.mse_loss,
                  epochs=4, lr=3e-3, progress=False, seed=1)
    assert history.train_loss[-1] < 0.8 * history.train_loss[0]

    moving = torch.roll(x, shifts=(3, -2), dims=(2, 3))
    reg = build_model("registration", "localnet", size="tiny")
    optimizer = torch.optim.Adam(reg.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        warped, _field = reg(moving[:4], x[:4])
        loss = torch.nn.functional.mse_loss(warped, x[:4])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
