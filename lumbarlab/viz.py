"""Figures of phantom cases and radiographs, rendered to PNG bytes (matplotlib for lesson figures, PIL for the
overlays a panel redraws on every slider move).

Widgets show these PNGs in ``ipywidgets.Image`` rather than drawing into an
``ipywidgets.Output`` while a cell runs: nbclient (inside papermill and Voilà) can wait for
a reply that already came when an Output is written during execution (jupyter/nbclient#312).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np

__all__ = ["figure_to_png", "label_colours", "sagittal_slice", "case_overview", "presets_figure", "draw_corners",
           "measurement_overlay", "ct_label_panels", "checkerboard"]


def figure_to_png(fig, dpi: int = 80) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def checkerboard(fixed: np.ndarray, moving: np.ndarray, squares: int = 8) -> np.ndarray:
    """Two 2D images of one shape interleaved in a ``squares`` × ``squares`` chequerboard (fixed in the squares whose
    row + column is even): where a registration worked, edges run straight across the squares' borders.

    Example:
        >>> checkerboard(np.zeros((4, 4)), np.ones((4, 4)), squares=2).tolist()
        [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]
    """
    a, b = np.asarray(fixed, float), np.asarray(moving, float)
    if a.shape != b.shape or a.ndim != 2:
        from lumbarlab.errors import LumbarLabError

        raise LumbarLabError(f"a chequerboard needs two 2D images of one shape, got {a.shape} and {b.shape}.")
    rows = (np.arange(a.shape[0]) * squares // a.shape[0])[:, None]
    cols = (np.arange(a.shape[1]) * squares // a.shape[1])[None, :]
    return np.where((rows + cols) % 2 == 0, a, b)


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


def presets_figure(seed: int = 0, shape: tuple[int, int, int] = (160, 160, 200), spacing: float = 1.0,
                   dpi: int = 72, **pathology) -> bytes:
    """One PNG: the same anatomy (``seed``) in the ``teaching`` preset (top row) and the ``clinical`` preset
    (bottom row) — CT and T2 mid-sagittal, an axial CT through L3, the lateral and AP radiographs.

    Example:
        >>> png = presets_figure(3, shape=(48, 48, 64), spacing=3.5, dpi=30)
        >>> png[1:4]
        b'PNG'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from lumbarlab.phantom import make_case, sample_params

    fig, axes = plt.subplots(2, 5, figsize=(17, 8.6))
    for row, realism in enumerate(("teaching", "clinical")):
        case = make_case(sample_params(seed, realism=realism, **pathology), shape=shape, spacing=spacing)
        aspect = case.grid.spacing[2] / case.grid.spacing[1]
        l3 = case.spine.vertebrae["L3"].body_centre()
        k = int(np.clip(round((l3[2] - case.grid.origin[2]) / case.grid.spacing[2]), 0, case.grid.shape[2] - 1))
        axial = case.ct.array[:, ::-1, k].T  # anterior up, patient's right on the viewer's left
        panels = [
            (f"CT sagittal ({case.params.acquisition.get('ct_kernel', 'white-noise')} kernel)",
             sagittal_slice(case.ct.array), dict(vmin=-450, vmax=1050, aspect=aspect)),
            ("MRI T2 sagittal", sagittal_slice(case.t2.array), dict(vmin=0, vmax=1000, aspect=aspect)),
            ("CT axial through L3", axial, dict(vmin=-450, vmax=1050, aspect=1.0)),
            ("X-ray lateral", case.lateral.image, dict(aspect=case.lateral.spacing[0] / case.lateral.spacing[1])),
            ("X-ray AP", case.ap.image, dict(aspect=case.ap.spacing[0] / case.ap.spacing[1])),
        ]
        for ax, (title, img, kw) in zip(axes[row], panels, strict=True):
            ax.imshow(img, cmap="gray", **kw)
            ax.set_title(f"{realism}: {title}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return figure_to_png(fig, dpi=dpi)


def ct_label_panels(ct, label_maps: dict, window: tuple[float, float] = (-250.0, 1250.0), dpi: int = 72) -> bytes:
    """One PNG: a sagittal CT slice through the spine (RAS volume; the slice through the vertebrae's mean x) with
    each label map of ``label_maps`` (title → array on the CT's grid, VerSe values) overlaid and its levels named.

    Args:
        ct: a :class:`~lumbarlab.volume.Volume` in HU, RAS axes (:func:`~lumbarlab.volume.to_canonical`).
        label_maps: panel title → label array (same shape as ``ct``).
        window: display window in HU (default: bone, W 1500 / L 500).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from lumbarlab.labels import LABEL_NAMES

    first = next(iter(label_maps.values()))
    spine = np.argwhere((first > 0) & (first < 100))
    x = int(round(spine[:, 0].mean())) if len(spine) else ct.shape[0] // 2
    aspect = ct.spacing[2] / ct.spacing[1]
    fig, axes = plt.subplots(1, len(label_maps), figsize=(3.4 * len(label_maps), 4.6), squeeze=False)
    for ax, (title, labels) in zip(axes[0], label_maps.items(), strict=True):
        lab = sagittal_slice(np.asarray(labels), x)
        ax.imshow(sagittal_slice(np.asarray(ct.array), x), cmap="gray", vmin=window[0], vmax=window[1], aspect=aspect)
        ax.imshow(label_colours(lab, alpha=0.45), aspect=aspect)
        for value in np.unique(lab):
            if 0 < value < 100:
                rows, cols = np.nonzero(lab == value)
                ax.text(cols.min() - 2, rows.mean(), LABEL_NAMES.get(int(value), str(value)), color="yellow",
                        fontsize=8, ha="right", va="center")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return figure_to_png(fig, dpi=dpi)


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


@functools.lru_cache(maxsize=8)
def _font(size: int):
    """A scalable font for drawing on images (DejaVu Sans from matplotlib's data when present, else PIL's)."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


class _Canvas:
    """A grey image scaled for display, with drawing in the image's own pixel coordinates."""

    def __init__(self, image: np.ndarray, spacing, width: int):
        from PIL import Image, ImageDraw

        h, w = image.shape
        aspect = spacing[0] / spacing[1]  # rows are this much taller than columns are wide
        self.sx = width / w
        self.sy = self.sx * aspect
        grey = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
        base = Image.fromarray((grey * 255).astype(np.uint8)).resize((width, max(int(round(h * self.sy)), 1)),
                                                                     Image.BILINEAR)
        self.image = base.convert("RGB")
        self.draw = ImageDraw.Draw(self.image, "RGBA")

    def xy(self, p) -> tuple[float, float]:
        return (float(p[0]) + 0.5) * self.sx, (float(p[1]) + 0.5) * self.sy

    def line(self, points, colour, width: int = 1) -> None:
        self.draw.line([self.xy(p) for p in points], fill=colour, width=width)

    def dot(self, p, colour, r: float = 2.0) -> None:
        x, y = self.xy(p)
        self.draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)

    def text(self, p, text: str, colour, size: int = 11, box: bool = True, pixels: bool = False) -> None:
        x, y = (float(p[0]), float(p[1])) if pixels else self.xy(p)
        font = _font(size)
        if box:
            left, top, right, bottom = self.draw.textbbox((x, y), text, font=font)
            self.draw.rectangle([left - 2, top - 1, right + 2, bottom + 1], fill=(0, 0, 0, 128))
        self.draw.text((x, y), text, fill=colour, font=font)

    def arrow(self, a, b, colour, width: int = 2) -> None:
        self.line([a, b], colour, width)
        (xa, ya), (xb, yb) = self.xy(a), self.xy(b)
        d = np.array([xb - xa, yb - ya])
        if np.linalg.norm(d) < 1e-6:
            return
        d /= np.linalg.norm(d)
        n = np.array([-d[1], d[0]])
        tip = np.array([xb, yb])
        head = [tuple(tip), tuple(tip - 8 * d + 4 * n), tuple(tip - 8 * d - 4 * n)]
        self.draw.polygon(head, fill=colour)

    def png(self, title: str = "") -> bytes:
        from PIL import Image

        if title:
            font = _font(12)
            band = Image.new("RGB", (self.image.width, 20), "white")
            from PIL import ImageDraw

            ImageDraw.Draw(band).text((4, 3), title, fill="black", font=font)
            canvas = Image.new("RGB", (self.image.width, self.image.height + 20), "white")
            canvas.paste(band, (0, 0))
            canvas.paste(self.image, (0, 20))
        else:
            canvas = self.image
        buf = io.BytesIO()
        canvas.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def measurement_overlay(image: np.ndarray, corners: dict[str, np.ndarray], spacing=(1.0, 1.0), view: str = "lateral",
                        title: str = "", dpi: int = 80, truth_corners: dict[str, np.ndarray] | None = None) -> bytes:
    """A radiograph with its measurements drawn on it, as PNG bytes (drawn with PIL: ~10 ms, fast enough for a
    panel's redraw; ``dpi`` sets the width, 5.2 inches at that many dots).

    Lateral: body outlines, the endplates of L1 and S1 extended (lordosis), every slip ≥ 5 % as an
    arrow with its percentage and Meyerding grade, heights of vertebrae with ≥ 20 % loss (Genant).
    AP: the Cobb lines on the end vertebrae with the angle. ``truth_corners`` are drawn faintly
    for comparison (e.g. annotated corners under a model's prediction).

    Example:
        >>> from lumbarlab.phantom.fast2d import lateral_radiograph
        >>> rad = lateral_radiograph(1, size=128)
        >>> measurement_overlay(rad.image, rad.corners, rad.spacing, "lateral", "phantom")[:4]
        b'\x89PNG'
    """
    from lumbarlab.measure import measure_ap, measure_lateral

    canvas = _Canvas(image, spacing, width=int(round(5.2 * dpi)))
    orange, yellow, red, pink = (255, 127, 14), (255, 212, 0), (255, 48, 48), (255, 102, 255)
    if truth_corners:
        for c in truth_corners.values():
            canvas.line(np.vstack([c, c[:1]]), (102, 204, 255, 180))
    for name, c in corners.items():
        canvas.line(np.vstack([c, c[:1]]), yellow)
        for p in c:
            canvas.dot(p, yellow)
        canvas.text((c[:, 0].max() + 3, c[:, 1].mean() - 4), name, yellow, size=9, box=False)

    def extend(p, q, length=1.6):
        mid, d = (p + q) / 2, (q - p)
        return np.vstack([mid - d * length / 2, mid + d * length / 2])

    if view == "lateral":
        rep = measure_lateral(corners, spacing)
        for name in ("L1", "S1"):
            if name in corners:
                canvas.line(extend(corners[name][1], corners[name][0]), orange, 2)
        if rep.lordosis_L1_S1 is not None:
            canvas.text((4, 4), f"lordosis L1–S1 {rep.lordosis_L1_S1:.1f}°", orange, pixels=True)
        for upper, s in rep.slips.items():
            if abs(s["slip_percent"]) < 5:
                continue
            lower = {"T12": "L1", "L1": "L2", "L2": "L3", "L3": "L4", "L4": "L5", "L5": "S1"}[upper]
            a, b = corners[lower][1], corners[upper][2]
            canvas.arrow(a, b, red)
            canvas.text((b[0] + 4, b[1] + 4), f"{s['slip_percent']:.0f} % (grade {s['meyerding_grade']})", red)
        for name, v in rep.vertebrae.items():
            if v["genant_grade"] > 0:
                c = corners[name]
                canvas.text((c[:, 0].max() + 4, c[:, 1].mean() + 8),
                            f"−{v['height_loss_percent']:.0f} % (Genant {v['genant_grade']})", pink)
    else:
        rep = measure_ap(corners, spacing)
        for name, edge in ((rep.upper_end, (0, 1)), (rep.lower_end, (3, 2))):
            canvas.line(extend(corners[name][edge[0]], corners[name][edge[1]], 2.2), orange, 2)
        canvas.text((4, 4), f"Cobb {rep.cobb:.1f}° ({rep.upper_end}–{rep.lower_end})", orange, pixels=True)
    return canvas.png(title)
