"""A short training loop a student can read: progress bar, history, AMP on CUDA, gradient
clipping, atomic best/last checkpoints, resume, early stopping, seeding — and the same code runs
under ``torchrun`` with DistributedDataParallel (gloo on CPU, nccl on GPUs).

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> x = torch.randn(32, 4); y = (x.sum(1) > 0).long()
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=8)
    >>> net, loss_fn = torch.nn.Linear(4, 2), torch.nn.CrossEntropyLoss()
    >>> history = fit(net, loader, loss_fn, epochs=5, val_loader=loader, progress=False,
    ...               metric_fn=lambda out, y: -loss_fn(out, y).item())
    >>> len(history.train_loss), history.train_loss[-1] < history.train_loss[0]
    (5, True)
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lumbarlab.errors import LumbarLabError

__all__ = ["seed_everything", "fit", "History", "save_checkpoint", "load_checkpoint", "distributed_setup"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); ``deterministic`` also asks cuDNN and torch for
    deterministic kernels (slower, reproducible)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def distributed_setup() -> tuple[int, int]:
    """Join the process group when launched by ``torchrun`` (RANK/WORLD_SIZE set); returns (rank, world)."""
    import torch.distributed as dist

    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return 0, 1
    if not dist.is_initialized():
        from lumbarlab.device import get_device

        # nccl only when this process computes on a GPU (LUMBARLAB_DEVICE=cpu on a GPU box → gloo)
        backend = "nccl" if get_device().type == "cuda" else "gloo"
        dist.init_process_group(backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return dist.get_rank(), dist.get_world_size()


def save_checkpoint(path: str | os.PathLike, **state) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written checkpoint.

    The bytes are serialised in memory first: ``torch.save`` to a path names the records inside its zip
    after the file, and the temporary file's random name would make equal weights hash differently.
    """
    import io

    from lumbarlab.io import atomic_path

    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code from pickles)."""
    path = Path(path)
    if not path.exists():
        raise LumbarLabError(f"{path}: no such checkpoint.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign files fail in many ways
        raise LumbarLabError(f"{path}: not a readable lumbarlab checkpoint ({exc.__class__.__name__}: {exc}).") from exc


@dataclass
class History:
    """Per-epoch training loss, validation metric and learning rate; ``best_epoch`` by the metric."""

    train_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def best_metric(self) -> float:
        return self.val_metric[self.best_epoch] if self.best_epoch >= 0 else math.nan

    def to_dict(self) -> dict:
        return {"train_loss": self.train_loss, "val_metric": self.val_metric, "lr": self.lr,
                "best_epoch": self.best_epoch, "stopped_early": self.stopped_early}


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def fit(
    model: torch.nn.Module,
    train_loader,
    loss_fn: Callable,
    epochs: int,
    val_loader=None,
    metric_fn: Callable | None = None,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    clip_grad: float | None = 1.0,
    amp: bool = True,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    patience: int | None = None,
    seed: int = 0,
    deterministic: bool = False,
    progress: bool = True,
    on_epoch_end: Callable[[int, History], None] | None = None,
) -> History:
    """Train ``model`` with AdamW and cosine decay; each batch is ``(inputs, targets)``.

    Validation: ``metric_fn(outputs, targets) -> float`` (higher is better) averaged over
    ``val_loader``; the best epoch is written to ``out_dir/best.pt`` and every epoch to
    ``last.pt`` (with optimizer state, for ``resume=True``), plus ``history.json``. Under
    ``torchrun`` the model is wrapped in DistributedDataParallel and only rank 0 writes.
    ``patience`` stops after that many epochs without a better metric.
    """
    from tqdm.auto import tqdm

    from lumbarlab.device import autocast, get_device

    if epochs < 1:
        raise LumbarLabError(f"epochs must be at least 1, got {epochs}.")
    if (val_loader is None) != (metric_fn is None):
        raise LumbarLabError("give both val_loader and metric_fn, or neither.")
    seed_everything(seed, deterministic)
    rank, world = distributed_setup()
    device = get_device()
    model = model.to(device)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not torch.cuda.is_bf16_supported()) if use_amp else None
    history, start = History(), 0
    out = Path(out_dir) if out_dir is not None else None
    if resume:
        if out is None or not (out / "last.pt").exists():
            raise LumbarLabError("resume=True needs out_dir with a last.pt from an earlier run.")
        state = load_checkpoint(out / "last.pt", map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = History(**state["history"])
        start = len(history.train_loss)
    since_best = 0
    for epoch in range(start, epochs):
        if hasattr(getattr(train_loader, "sampler", None), "set_epoch"):
            train_loader.sampler.set_epoch(epoch)  # a DistributedSampler reshuffles per epoch
        net.train()
        total, count = 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=not progress or rank != 0)
        for inputs, targets in bar:
            inputs, targets = _to(inputs, device), _to(targets, device)
            optimizer.zero_grad(set_to_none=True)
            with autocast(use_amp):
                loss = loss_fn(net(inputs), targets)
            if not torch.isfinite(loss):
                raise LumbarLabError(f"the loss became {loss.item()} in epoch {epoch + 1}; lower the learning rate.")
            if scaler is not None and scaler.is_enabled():
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            if scaler is not None and scaler.is_enabled():
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            total += loss.item() * len(inputs)
            count += len(inputs)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        history.train_loss.append(total / max(count, 1))
        history.lr.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
        improved = False
        if val_loader is not None:
            net.eval()
            scores = []
            with torch.inference_mode(), autocast(use_amp):
                for inputs, targets in val_loader:
                    inputs, targets = _to(inputs, device), _to(targets, device)
                    scores.append(float(metric_fn(net(inputs), targets)))
            history.val_metric.append(float(np.mean(scores)))
            improved = history.best_epoch < 0 or history.val_metric[-1] > history.best_metric
        else:
            improved = True
        if improved:
            history.best_epoch = epoch
            since_best = 0
        else:
            since_best += 1
        if out is not None and rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            if improved:
                save_checkpoint(out / "best.pt", model=model.state_dict(), epoch=epoch)
            save_checkpoint(out / "last.pt", model=model.state_dict(), optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(), history=history.to_dict())
            (out / "history.json").write_text(json.dumps(history.to_dict(), indent=1))
        if on_epoch_end is not None and rank == 0:
            on_epoch_end(epoch, history)
        if patience is not None and since_best >= patience:
            history.stopped_early = True
            break
    return history
