"""Matplotlib figures of phantom cases and radiographs, rendered to PNG bytes.

Widgets show these PNGs in ``ipywidgets.Image`` rather than drawing into an
``ipywidgets.Output`` while a cell runs: nbclient (inside papermill and Voilà) can wait for
a reply that already came when an Output is written during execution (jupyter/nbclient#312).
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["figure_to_png", "label_colours", "sagittal_slice", "case_overview", "draw_corners"]


def figure_to_png(fig, dpi: int = 80) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def label_colours(labels: np.ndarray, alpha: float = 0.35) -> np.ndarray:
    """RGBA overlay (float, H×W×4) with one stable colour per label value, transparent background."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    rgba = np.zeros((*labels.shape, 4), dtype=np.float32)
    for value in np.unique(labels):
        if value == 0:
            continue
        rgba[labels == value] = (*cmap((int(value) * 7) % 20)[:3], alpha)
    return rgba


def sagittal_slice(volume: np.ndarray, index: int | None = None) -> np.ndarray:
    """Mid-sagittal plane of an (x, y, z) RAS volume for display: rows superior-first, anterior on the left."""
    i = volume.shape[0] // 2 if index is None else index
    return volume[i].T[::-1, ::-1]


def draw_corners(ax, corners: dict[str, np.ndarray], colour: str = "yellow") -> None:
    """Outline each vertebra's four corners and name it."""
    for name, c in corners.items():
        closed = np.vstack([c, c[:1]])
        ax.plot(closed[:, 0], closed[:, 1], "-", color=colour, lw=0.8)
        ax.plot(c[:, 0], c[:, 1], "o", color=colour, ms=2)
        ax.text(c[:, 0].max() + 3, c[:, 1].mean(), name, color=colour, fontsize=7, va="center")


def case_overview(case, overlay: bool = True, dpi: int = 72) -> bytes:
    """One PNG with CT, T1, T2 (mid-sagittal) and the lateral and AP radiographs of a case."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    lab = sagittal_slice(case.labels.array)
    aspect = case.grid.spacing[2] / case.grid.spacing[1]
    panels = [
        ("CT (HU, W 1500 / L 300)", sagittal_slice(case.ct.array), dict(vmin=-450, vmax=1050)),
        ("MRI T1", sagittal_slice(case.t1.array), dict(vmin=0, vmax=1000)),
        ("MRI T2", sagittal_slice(case.t2.array), dict(vmin=0, vmax=1000)),
    ]
    fig, axes = plt.subplots(1, 5, figsize=(17, 5.2), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1]})
    for ax, (title, img, kw) in zip(axes[:3], panels, strict=False):
        ax.imshow(img, cmap="gray", aspect=aspect, **kw)
        if overlay:
            ax.imshow(label_colours(lab), aspect=aspect)
        ax.set_title(title, fontsize=9)
    for ax, rad, title in ((axes[3], case.lateral, "X-ray lateral"), (axes[4], case.ap, "X-ray AP")):
        ax.imshow(rad.image, cmap="gray", aspect=rad.spacing[0] / rad.spacing[1])
        if overlay:
            draw_corners(ax, rad.corners)
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return figure_to_png(fig, dpi=dpi)
