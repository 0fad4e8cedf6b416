"""Saliency maps drawn over images: an RGB overlay for 2D, a slice of it for 3D."""

from __future__ import annotations

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = ["overlay", "overlay_slice"]


def _colormap(name: str) -> np.ndarray:
    """256×3 float RGB table of a matplotlib colormap (imported late: only when drawing)."""
    from matplotlib import colormaps

    if name not in colormaps:
        raise LumbarLabError(f"unknown colormap {name!r}; try 'jet', 'inferno' or 'viridis'.")
    return colormaps[name](np.linspace(0, 1, 256))[:, :3]


def overlay(image: np.ndarray, saliency: np.ndarray, alpha: float = 0.45, cmap: str = "jet",
            threshold: float = 0.0) -> np.ndarray:
    """(H, W) image and (H, W) map in [0, 1] → (H, W, 3) uint8: grey image blended with the coloured map.

    ``alpha`` is the map's opacity at its maximum (it fades with the map's value so that cold regions
    keep the anatomy visible); pixels with a map value below ``threshold`` show the image only.
    """
    image, saliency = np.asarray(image, dtype=np.float32), np.asarray(saliency, dtype=np.float32)
    if image.shape != saliency.shape or image.ndim != 2:
        raise LumbarLabError(f"overlay needs an image and a map of the same 2D shape, got {image.shape} and {saliency.shape}.")
    if not 0.0 <= alpha <= 1.0:
        raise LumbarLabError(f"alpha must be within 0–1, got {alpha}.")
    lo, hi = np.percentile(image, [0.5, 99.5])
    grey = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)[..., None].repeat(3, -1)
    s = np.clip(saliency, 0, 1)
    colour = _colormap(cmap)[(s * 255).astype(np.uint8)]
    weight = (alpha * s * (s >= threshold))[..., None]
    return (255 * ((1 - weight) * grey + weight * colour)).round().astype(np.uint8)


def overlay_slice(volume: np.ndarray, saliency: np.ndarray, axis: int = 0, index: int | None = None,
                  alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """One slice of a 3D overlay (default: the slice where the map is largest), as (H, W, 3) uint8."""
    volume, saliency = np.asarray(volume), np.asarray(saliency)
    if volume.shape != saliency.shape or volume.ndim != 3:
        raise LumbarLabError(f"overlay_slice needs 3D volume and map of one shape, got {volume.shape} and {saliency.shape}.")
    if index is None:
        index = int(np.argmax(np.moveaxis(saliency, axis, 0).reshape(saliency.shape[axis], -1).sum(1)))
    if not 0 <= index < volume.shape[axis]:
        raise LumbarLabError(f"slice {index} is outside 0–{volume.shape[axis] - 1} along axis {axis}.")
    return overlay(np.take(volume, index, axis), np.take(saliency, index, axis), alpha, cmap)
