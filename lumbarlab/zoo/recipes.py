"""Zoo recipes: what each model is, what it trains on, and the floor it must reach.

Phantom seeds of the splits lie far apart (train from 100 000, validation from 800 000, test from
900 000), so no anatomy is shared between them. The floors are issue #4's: AUC ≥ 0.95,
mean Dice ≥ 0.90, mean radial error ≤ 2 mm.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lumbarlab.errors import LumbarLabError

__all__ = ["Recipe", "RECIPES", "resolve"]


@dataclass(frozen=True)
class Recipe:
    """One reproducible training run on phantom lateral radiographs.

    Attributes:
        name: zoo name (also the checkpoint's file stem).
        task: ``classification``, ``segmentation`` or ``landmarks`` (see :mod:`lumbarlab.datasets`).
        arch, size, out_channels: passed to :func:`lumbarlab.models.build_model`.
        image_size: square image side in pixels (230 mm field of view: 0.898 mm per pixel at 256).
        train, val, test: (first anatomy seed, number of images) of each split.
        epochs, batch_size, lr: AdamW with cosine decay (:func:`lumbarlab.train.fit`).
        augment: random contrast, gamma, noise and shifts (:class:`lumbarlab.datasets.XrayDataset`).
        init_from: zoo model whose UNet encoder initialises this one (transfer learning), or None.
        floor: (metric, ``">="`` or ``"<="``, value) the test split must meet.
        seed: torch seed of weights init, shuffling and augmentation.
        heatmap_weight: landmarks only — weight of the DSNT loss's heatmap term (:mod:`lumbarlab.losses`).
    """

    name: str
    task: str
    arch: str
    size: str
    out_channels: int
    floor: tuple[str, str, float]
    description: str
    image_size: int = 256
    train: tuple[int, int] = (100_000, 800)
    val: tuple[int, int] = (800_000, 100)
    test: tuple[int, int] = (900_000, 200)
    epochs: int = 8
    batch_size: int = 16
    lr: float = 2e-3
    augment: bool = True
    init_from: str | None = None
    seed: int = 0
    heatmap_weight: float = 1.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("xray-vertebrae", "segmentation", "unet", "tiny", 3, ("mean_dice", ">=", 0.90),
               "MONAI UNet (8–128 channels, 2 residual units): background, vertebral bodies T12–L5, sacrum.",
               epochs=8),
        Recipe("xray-corners", "landmarks", "unet", "tiny", 22, ("mre_mm", "<=", 2.0),
               "MONAI UNet + 1×1 head: 22 heatmaps (4 body corners of L1–L5, S1's superior endplate), DSNT loss "
               "with a heavy heatmap term (16) so that maps are single peaks; starts from the segmenter's weights.",
               epochs=14, lr=2e-3, init_from="xray-vertebrae", heatmap_weight=16.0),
        Recipe("xray-slip", "classification", "unet_encoder", "tiny", 2, ("auc", ">=", 0.95),
               "The segmenter's UNet encoder + pooling + linear: spondylolisthesis (any slip ≥ 8 %) vs none.",
               train=(200_000, 2000), val=(800_000, 200), epochs=8, batch_size=32, lr=1e-3,
               init_from="xray-vertebrae"),
    )
}

_TASK_ALIASES = {"classification": "xray-slip", "segmentation": "xray-vertebrae", "landmarks": "xray-corners"}


def resolve(name: str) -> Recipe:
    """A recipe by zoo name or by task (``classification`` → ``xray-slip``)."""
    key = _TASK_ALIASES.get(name, name)
    if key not in RECIPES:
        raise LumbarLabError(f"no zoo model {name!r}; choose from {', '.join(RECIPES)} "
                             f"(or a task: {', '.join(_TASK_ALIASES)}).")
    return RECIPES[key]
