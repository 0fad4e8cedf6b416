"""Run a zoo recipe, and measure a model on a recipe's held-out phantom split. The data comes from the
recipe's builder (:mod:`lumbarlab.zoo.data`), the loss and the epoch-picking metric from its task
(:mod:`lumbarlab.zoo.tasks`)."""

from __future__ import annotations

import datetime
import platform
import time
from pathlib import Path

import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.zoo.data import builder, test_split
from lumbarlab.zoo.recipes import Recipe, resolve
from lumbarlab.zoo.store import ZooEntry, build, checkpoint_path, load, sha256, write_entry
from lumbarlab.zoo.tasks import loss_function, selection_metric

__all__ = ["train", "evaluate", "test_split", "loss_function"]


def evaluate(recipe: Recipe, model: torch.nn.Module, split) -> dict[str, float]:
    """Test metrics of ``model`` on the recipe's ``split`` (its builder's scoring; rounded to 5 decimals, the
    manifest's precision) — see :mod:`lumbarlab.zoo.tasks` for each task's metrics."""
    model = model.eval().cpu()
    out = builder(recipe).evaluate(recipe, model, split)
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
    data = builder(recipe)
    train_set, val_set = data.train(recipe), data.val(recipe)
    torch.manual_seed(recipe.seed)
    model = build(recipe)
    if recipe.init_from:
        _init_from(recipe, model, folder)
    generator = torch.Generator().manual_seed(recipe.seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=recipe.batch_size, shuffle=True, generator=generator)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=32 if recipe.spatial_dims == 2 else 2)
    # Validation picks the best epoch by the same metric family as the floor (higher is better).
    # Dice over the batch where most patches or slabs miss most classes (3D patches, the lateral slabs of an MRI)
    loss_fn = loss_function(recipe.task, recipe.heatmap_weight,
                            batch_dice=recipe.spatial_dims == 3 or recipe.modality != "xray")
    metric = selection_metric(recipe.task, loss_fn)
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
