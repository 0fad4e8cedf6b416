"""Matplotlib figures of phantom cases and radiographs, rendered to PNG bytes.

Widgets show these PNGs in ``ipywidgets.Image`` rather than drawing into an
``ipywidgets.Output`` while a cell runs: nbclient (inside papermill and Voilà) can wait for
a reply that already came when an Output is written during execution (jupyter/nbclient#312).
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["figure_to_png", "label_colours", "sagittal_slice", "case_overview", "draw_corners", "measurement_overlay"]


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


def measurement_overlay(image: np.ndarray, corners: dict[str, np.ndarray], spacing=(1.0, 1.0), view: str = "lateral",
                        title: str = "", dpi: int = 80, truth_corners: dict[str, np.ndarray] | None = None) -> bytes:
    """A radiograph with its measurements drawn on it, as PNG bytes.

    Lateral: body outlines, the endplates of L1 and S1 extended (lordosis), every slip ≥ 5 % as an
    arrow with its percentage and Meyerding grade, heights of vertebrae with ≥ 20 % loss (Genant).
    AP: the Cobb lines on the end vertebrae with the angle. ``truth_corners`` are drawn faintly
    for comparison (e.g. annotated corners under a model's prediction).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from lumbarlab.measure import measure_ap, measure_lateral

    fig, ax = plt.subplots(figsize=(5.2, 5.2 * image.shape[0] / image.shape[1]))
    ax.imshow(image, cmap="gray", aspect=spacing[0] / spacing[1])
    if truth_corners:
        for c in truth_corners.values():
            ax.plot(*np.vstack([c, c[:1]]).T, "-", color="#66ccff", lw=0.8, alpha=0.7)
    draw_corners(ax, corners, "yellow")

    def extend(p, q, length=1.6):
        mid, d = (p + q) / 2, (q - p)
        return np.vstack([mid - d * length / 2, mid + d * length / 2])

    if view == "lateral":
        rep = measure_lateral(corners, spacing)
        for name in ("L1", "S1"):
            if name in corners:
                line = extend(corners[name][1], corners[name][0])
                ax.plot(line[:, 0], line[:, 1], "-", color="#ff7f0e", lw=1.2)
        if rep.lordosis_L1_S1 is not None:
            ax.text(4, 12, f"lordosis L1–S1 {rep.lordosis_L1_S1:.1f}°", color="#ff7f0e", fontsize=8,
                    bbox=dict(facecolor="black", alpha=0.5, lw=0))
        for upper, s in rep.slips.items():
            if abs(s["slip_percent"]) < 5:
                continue
            lower = {"T12": "L1", "L1": "L2", "L2": "L3", "L3": "L4", "L4": "L5", "L5": "S1"}[upper]
            a, b = corners[lower][1], corners[upper][2]
            ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="#ff3030", lw=1.5))
            ax.text(b[0] + 4, b[1] + 4, f"{s['slip_percent']:.0f} % (grade {s['meyerding_grade']})", color="#ff3030",
                    fontsize=8, bbox=dict(facecolor="black", alpha=0.5, lw=0))
        for name, v in rep.vertebrae.items():
            if v["genant_grade"] > 0:
                c = corners[name]
                ax.text(c[:, 0].max() + 4, c[:, 1].mean() + 8, f"−{v['height_loss_percent']:.0f} % (Genant {v['genant_grade']})",
                        color="#ff66ff", fontsize=8, bbox=dict(facecolor="black", alpha=0.5, lw=0))
    else:
        rep = measure_ap(corners, spacing)
        for name, edge in ((rep.upper_end, (0, 1)), (rep.lower_end, (3, 2))):
            line = extend(corners[name][edge[0]], corners[name][edge[1]], 2.2)
            ax.plot(line[:, 0], line[:, 1], "-", color="#ff7f0e", lw=1.2)
        ax.text(4, 12, f"Cobb {rep.cobb:.1f}° ({rep.upper_end}–{rep.lower_end})", color="#ff7f0e", fontsize=8,
                bbox=dict(facecolor="black", alpha=0.5, lw=0))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(0, image.shape[1])
    ax.set_ylim(image.shape[0], 0)
    fig.tight_layout()
    return figure_to_png(fig, dpi=dpi)
