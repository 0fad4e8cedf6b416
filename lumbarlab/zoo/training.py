"""Run a zoo recipe, and measure a model on a recipe's held-out phantom split."""

from __future__ import annotations

import datetime
import functools
import platform
import time
from pathlib import Path

import numpy as np
import torch

from lumbarlab.datasets import XrayDataset, XraySplit, corners_to_dict, phantom_xrays
from lumbarlab.errors import LumbarLabError
from lumbarlab.zoo.recipes import Recipe, resolve
from lumbarlab.zoo.store import ZooEntry, build, checkpoint_path, load, predict_landmarks, sha256, write_entry

__all__ = ["train", "evaluate", "test_split", "loss_function"]


@functools.lru_cache(maxsize=4)
def _split(first_seed: int, count: int, size: int) -> XraySplit:
    return phantom_xrays(count, seed=first_seed, size=size)


def test_split(recipe: Recipe) -> XraySplit:
    """The recipe's held-out test images (generated once per process)."""
    return _split(*recipe.test, recipe.image_size)


def loss_function(task: str, heatmap_weight: float = 1.0):
    """The training loss of a task: cross-entropy, Dice + cross-entropy (MONAI), or DSNT (landmarks)."""
    if task == "classification":
        return torch.nn.functional.cross_entropy
    if task == "segmentation":
        from monai.losses import DiceCELoss

        dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
        return lambda logits, masks: dice_ce(logits, masks[:, None])
    from lumbarlab.losses import landmark_loss

    if heatmap_weight == 1.0:
        return landmark_loss
    return lambda logits, coords: landmark_loss(logits, coords, heatmap_weight=heatmap_weight)


def _batches(images: np.ndarray, size: int = 32):
    for i in range(0, len(images), size):
        yield torch.from_numpy(images[i : i + size])[:, None]


@torch.inference_mode()
def evaluate(recipe: Recipe, model: torch.nn.Module, split: XraySplit) -> dict[str, float]:
    """Test metrics of ``model`` on ``split`` (rounded to 5 decimals, the manifest's precision).

    classification: AUC, accuracy, sensitivity, specificity (threshold 0.5); segmentation: mean Dice
    and IoU over body and sacrum per image, averaged, and each class's Dice; landmarks: mean radial
    error (mm), success detection rates at 2 and 4 mm, and the mean absolute error of the Meyerding
    slip of L4 and L5 measured from the predicted corners (percentage points).
    """
    from lumbarlab import metrics

    model = model.eval().cpu()
    if recipe.task == "classification":
        scores = np.concatenate([torch.softmax(model(x), 1)[:, 1].numpy() for x in _batches(split.images)])
        y, pred = split.labels, (scores >= 0.5).astype(int)
        out = {"auc": metrics.roc_auc(y, scores), "accuracy": metrics.accuracy(y, pred),
               "sensitivity": metrics.recall(y, pred), "specificity": metrics.specificity(y, pred)}
    elif recipe.task == "segmentation":
        pred = np.concatenate([model(x).argmax(1).numpy() for x in _batches(split.images)])
        per = [metrics.mean_dice(t, p, labels=[1, 2], per_class=True) for t, p in zip(split.masks, pred, strict=True)]
        out = {"mean_dice": float(np.mean([np.mean(list(d.values())) for d in per])),
               "mean_iou": float(np.mean([metrics.mean_iou(t, p, labels=[1, 2]) for t, p in zip(split.masks, pred, strict=True)])),
               "dice_body": float(np.mean([d[1] for d in per])), "dice_sacrum": float(np.mean([d[2] for d in per]))}
    else:
        from lumbarlab.measure.core import meyerding_slip

        coords = predict_landmarks(model, split.images)
        mre, _ = metrics.mean_radial_error(coords, split.corners, split.spacing)
        sdr = metrics.success_detection_rate(coords, split.corners, split.spacing, thresholds=(2.0, 4.0))
        slip_err, unmeasurable = [], 0
        for p, t in zip(coords, split.corners, strict=True):
            pc, tc = corners_to_dict(p), corners_to_dict(t)
            for upper, lower in (("L4", "L5"), ("L5", "S1")):
                try:
                    measured = meyerding_slip(pc[upper], pc[lower], split.spacing)
                except LumbarLabError:  # collapsed corners (an untrained model) cannot be measured
                    unmeasurable += 1
                    continue
                slip_err.append(abs(measured - meyerding_slip(tc[upper], tc[lower], split.spacing)))
        out = {"mre_mm": mre, "sdr_2mm": sdr[2.0], "sdr_4mm": sdr[4.0],
               # 100 percentage points stands for "nothing measurable" (keeps the manifest valid JSON)
               "slip_mae_percent": float(np.mean(slip_err)) if slip_err else 100.0,
               "slip_unmeasurable": unmeasurable / (2 * len(coords))}
    return {k: round(float(v), 5) for k, v in out.items()}


def _init_from(recipe: Recipe, model: torch.nn.Module, folder: Path) -> None:
    """Start from the trained segmenter named by ``init_from`` (from ``folder`` if trained there, else
    the shipped one): a classifier takes its encoder, a heatmap network every layer but the output."""
    source = resolve(recipe.init_from)
    unet = load(source.name, folder if (folder / f"{source.name}.pt").exists() else None)
    if hasattr(model, "load_encoder"):
        model.load_encoder(unet)
    elif hasattr(model, "load_body"):
        model.load_body(unet)
    else:
        raise LumbarLabError(f"{recipe.name}: a {type(model).__name__} cannot start from {source.name}.")


def train(name: str | Recipe, out_dir: str | Path | None = None, progress: bool = True,
          on_epoch_end=None) -> ZooEntry:
    """Train a zoo recipe from scratch and write ``<name>.pt`` and its manifest entry to ``out_dir``
    (default: ``<cache>/zoo``; never the shipped weights unless ``out_dir`` is :func:`weights_dir`).

    Deterministic on one machine: the same recipe, torch version and thread count give the same bytes.
    """
    from lumbarlab.device import device_summary
    from lumbarlab.paths import cache_dir
    from lumbarlab.train import fit, load_checkpoint, save_checkpoint

    recipe = name if isinstance(name, Recipe) else resolve(name)
    folder = Path(out_dir) if out_dir is not None else cache_dir() / "zoo"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_set = XrayDataset(_split(*recipe.train, recipe.image_size), recipe.task, augment=recipe.augment)
    val_split = _split(*recipe.val, recipe.image_size)
    torch.manual_seed(recipe.seed)
    model = build(recipe)
    if recipe.init_from:
        _init_from(recipe, model, folder)
    generator = torch.Generator().manual_seed(recipe.seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=recipe.batch_size, shuffle=True, generator=generator)
    val_loader = torch.utils.data.DataLoader(XrayDataset(val_split, recipe.task), batch_size=32)
    # Validation picks the best epoch by the same metric family as the floor (higher is better).
    loss_fn = loss_function(recipe.task, recipe.heatmap_weight)
    if recipe.task == "classification":
        def metric(out, y):
            return float((out.argmax(1) == y).float().mean())
    else:
        def metric(out, y):
            return -float(loss_fn(out, y))
    # Epoch checkpoints (with optimizer state) stay in the cache, never beside the shipped weights.
    run_dir = cache_dir() / "zoo-runs" / recipe.name
    history = fit(model, loader, loss_fn, epochs=recipe.epochs, val_loader=val_loader, metric_fn=metric, lr=recipe.lr,
                  out_dir=run_dir, seed=recipe.seed, deterministic=True, progress=progress, amp=False,
                  on_epoch_end=on_epoch_end)
    model.load_state_dict(load_checkpoint(run_dir / "best.pt")["model"])
    model = model.cpu().eval()
    metrics = evaluate(recipe, model, test_split(recipe))
    path = checkpoint_path(recipe.name, folder)
    save_checkpoint(path, model={k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    if path.stat().st_size > 5 * 2**20:
        raise LumbarLabError(f"{path} is {path.stat().st_size / 2**20:.1f} MB; zoo checkpoints must stay under 5 MB.")
    entry = ZooEntry(
        recipe.name, path.name, sha256(path), path.stat().st_size, recipe.to_dict(), metrics,
        {"trained": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), "device": device_summary(),
         "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
         "train_seconds": round(time.perf_counter() - started, 1), "best_epoch": history.best_epoch + 1,
         "history": history.to_dict()},
    )
    write_entry(entry, folder)
    return entry
