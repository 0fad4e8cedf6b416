"""The registration dashboard's panel: two CT scans of one phantom patient (a posture change and a table shift),
registered by a method the user picks, shown as fixed, registered moving and a chequerboard / blend / difference of
the two, with the target registration error of every vertebral landmark.

Methods: none, rigid, affine (:func:`lumbarlab.register.register_volumes`), a B-spline free-form deformation
(SimpleITK, after the affine), the zoo's learned LocalNet ``ct-register`` (after a rigid registration of the sacrum:
its training pairs had the sacrum in place) and one rigid transform
per vertebra (:func:`lumbarlab.register.vertebrae.per_vertebra_rigid`). A user error (a negative seed, a posture the
phantom cannot take, a model not installed) shows in the message line and the panel keeps its last good result.
"""

from __future__ import annotations

import html
import io
import time

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.widgets.base import Panel

__all__ = ["RegistrationPanel", "register_pair", "METHODS"]

METHODS = ("none", "rigid", "affine", "B-spline", "LocalNet (zoo)", "rigid per vertebra")
#: The panel's scanner grid: 160 × 128 × 256 mm at 4 mm, the zoo's ct-register grid (a registration in seconds).
_GRID = dict(shape=(40, 32, 64), spacing=4.0)
_ZOOM = 4
_WINDOW = (-200.0, 1300.0)


def register_pair(pair, method: str, iterations: int = 40) -> dict:
    """Register a :class:`lumbarlab.datasets.registration_pairs.RegistrationPair` by ``method`` (one of
    :data:`METHODS`): the displacement field (mm, fixed grid), where each fixed landmark is predicted in the moving
    scan, and the seconds it took.

    Example:
        >>> from lumbarlab.datasets.registration_pairs import posture_pair
        >>> out = register_pair(posture_pair(900_850, 5.0, shape=(16, 16, 32), spacing=8.0), "none")
        >>> out["field"].shape, bool(np.allclose(out["points"], out["pair"].fixed_points))
        ((3, 16, 16, 32), True)
    """
    from lumbarlab.register import register_volumes
    from lumbarlab.register.deformable import bspline_register, displace_points, displacement_from_transform

    if method not in METHODS:
        raise LumbarLabError(f"unknown method {method!r}; choose from {', '.join(METHODS)}.")
    fixed, moving = pair.fixed, pair.moving
    started = time.perf_counter()
    if method == "none":
        u = np.zeros((3, *fixed.shape), np.float32)
        return {"pair": pair, "field": u, "points": pair.fixed_points.copy(), "seconds": 0.0}
    if method in ("rigid", "rigid per vertebra"):
        start = register_volumes(moving, fixed, "rigid", levels=(2, 1), iterations=iterations)
    elif method == "LocalNet (zoo)":  # the network learnt pairs with the sacrum in place: register the sacrum first
        from scipy import ndimage

        sacrum = ndimage.binary_dilation(np.asarray(pair.fixed_labels.array) == 26, iterations=2)
        start = register_volumes(moving, fixed, "rigid", levels=(2, 1), iterations=iterations, mask=sacrum)
    else:
        start = register_volumes(moving, fixed, "affine", levels=(2, 1), iterations=iterations)
    u = displacement_from_transform(start, fixed)
    if method == "B-spline":
        from scipy import ndimage

        near = ndimage.binary_dilation(np.asarray(pair.fixed_labels.array) > 0, iterations=2)
        u, _ = bspline_register(moving, fixed, grid_mm=40.0, initial=start, mask=near, iterations=iterations)
    elif method == "LocalNet (zoo)":
        from lumbarlab import zoo
        from lumbarlab.register.deformable import learned_register

        u, _ = learned_register(zoo.load("ct-register"), moving, fixed, initial=start)
    elif method == "rigid per vertebra":
        from lumbarlab.labels import VERSE_LABEL
        from lumbarlab.register.vertebrae import map_points_by_vertebra, per_vertebra_rigid

        pieces, _ = per_vertebra_rigid(moving, fixed, pair.fixed_labels, initial=start, iterations=iterations)
        labels = np.asarray(pair.fixed_labels.array)
        for level, t in pieces.items():  # inside each vertebra its own motion, elsewhere the whole-spine one
            inside = labels == VERSE_LABEL[level]
            u[:, inside] = displacement_from_transform(t, fixed)[:, inside]
        points = map_points_by_vertebra(pair.fixed_points, pair.point_names, pieces, fallback=start)
        return {"pair": pair, "field": u, "points": points, "seconds": time.perf_counter() - started}
    return {"pair": pair, "field": u, "points": displace_points(pair.fixed_points, u, fixed),
            "seconds": time.perf_counter() - started}


def _grey(plane: np.ndarray) -> np.ndarray:
    lo, hi = _WINDOW
    return np.clip((np.nan_to_num(plane, nan=lo) - lo) / (hi - lo), 0.0, 1.0)


class RegistrationPanel(Panel):
    """Phantom posture pair → a registration method → fixed / registered / overlay images and landmark TRE.

    Example:
        >>> panel = RegistrationPanel(method="rigid")  # doctest: +SKIP
        >>> panel.result["tre"].mean() < panel.before.mean()  # doctest: +SKIP
        True
    """

    css = "ll-reg"

    def __init__(self, seed: int = 900_820, flexion: float = 10.0, shift: float = 6.0, method: str = "affine",
                 view: str = "chequerboard"):
        import ipywidgets as w

        super().__init__()
        self.pair = None
        self.result: dict = {}
        self.before = np.zeros(0)
        style, lay = {"description_width": "130px"}, w.Layout(width="320px")
        self.control("seed", w.IntText(seed, description="Patient (seed)", style=style, layout=lay), self._on_pair)
        self.control("flexion", w.FloatSlider(flexion, min=-20.0, max=20.0, step=1.0, description="Flexion (°)",
                                              style=style, layout=lay), self._on_pair)
        self.control("shift", w.FloatSlider(shift, min=0.0, max=20.0, step=1.0, description="Table shift (mm)",
                                            style=style, layout=lay), self._on_pair)
        self.control("method", w.Dropdown(options=list(METHODS), value=method, description="Method", style=style,
                                          layout=lay), self._on_method)
        self.control("view", w.Dropdown(options=["chequerboard", "blend", "difference"], value=view,
                                        description="Overlay", style=style, layout=lay), self._draw, continuous=True)
        self.control("blend", w.FloatSlider(0.5, min=0.0, max=1.0, step=0.05, description="Blend (moving share)",
                                            style=style, layout=lay), self._draw, continuous=True)
        self.control("slice", w.IntSlider(_GRID["shape"][0] // 2, min=0, max=_GRID["shape"][0] - 1,
                                          description="Sagittal slice", style=style, layout=lay), self._draw,
                     continuous=True)
        self.image = w.Image(format="png")
        self.image.add_class(f"{self.css}-image")
        self.summary = w.HTML()
        self.summary.add_class(f"{self.css}-summary")
        self.table = w.HTML()
        self.table.add_class(f"{self.css}-table")
        note = w.HTML("<small>Left: fixed scan. Middle: moving scan registered onto it. Right: the overlay. Green "
                      "crosses: the landmarks of the fixed scan; where the registration worked, the moving anatomy "
                      "lies under them. Phantom data, a teaching tool.</small>")
        self.widget = w.VBox([w.HBox([w.VBox(list(self.controls.values())), w.VBox([self.image, note])]),
                              self.summary, self.table, self.message])
        self.guard(self._on_pair)

    # -- handlers -----------------------------------------------------------------------------------
    def _on_pair(self) -> None:
        from lumbarlab.datasets.registration_pairs import posture_pair

        v = self.values()
        shift = float(v["shift"])
        pair = posture_pair(int(v["seed"]), float(v["flexion"]), shift_mm=(0.0, -0.5 * shift, shift), **_GRID)
        self._register(pair)

    def _on_method(self) -> None:
        if self.pair is None:
            raise LumbarLabError("no pair yet: choose a patient seed of 0 or more.")
        self._register(self.pair)

    def _register(self, pair) -> None:
        from lumbarlab.metrics import folded_fraction, target_registration_error
        from lumbarlab.register.deformable import warp_volume

        out = register_pair(pair, self.controls["method"].value)
        out["tre"] = target_registration_error(out["points"], pair.moving_points)
        out["warped"] = np.asarray(warp_volume(pair.moving, out["field"], pair.fixed).array)
        out["folded"] = 100.0 * folded_fraction(out["field"], pair.fixed.spacing)
        self.pair, self.result = pair, out
        self.before = target_registration_error(pair.fixed_points, pair.moving_points)
        self._draw()
        self._tables()

    def _draw(self) -> None:
        from PIL import Image, ImageDraw

        if not self.result:
            return
        pair, k = self.pair, int(self.controls["slice"].value)
        fixed = _grey(np.asarray(pair.fixed.array)[k].T[::-1])        # rows: head at the top
        warped = _grey(self.result["warped"][k].T[::-1])
        view = self.controls["view"].value
        if view == "chequerboard":
            from lumbarlab.viz import checkerboard

            overlay = checkerboard(fixed, warped, squares=8)
        elif view == "blend":
            a = float(self.controls["blend"].value)
            overlay = (1 - a) * fixed + a * warped
        else:
            overlay = 0.5 + 0.5 * (warped - fixed)
        panes = [np.kron(p, np.ones((_ZOOM, _ZOOM))) for p in (fixed, warped, overlay)]
        gap = np.ones((panes[0].shape[0], 4))
        canvas = Image.fromarray((255 * np.hstack([panes[0], gap, panes[1], gap, panes[2]])).astype(np.uint8)).convert("RGB")
        draw = ImageDraw.Draw(canvas)
        ijk = pair.fixed.world_to_index(pair.fixed_points)
        nz = pair.fixed.shape[2]
        for offset in (0, panes[0].shape[1] + 4, 2 * (panes[0].shape[1] + 4)):
            for i, j, kz in ijk:
                if abs(i - k) > 1.5:  # a landmark off this slice (a coronal corner, or the slice is lateral)
                    continue
                x, y = offset + (j + 0.5) * _ZOOM, (nz - kz - 0.5) * _ZOOM
                draw.line([(x - 3, y), (x + 3, y)], fill=(0, 230, 0))
                draw.line([(x, y - 3), (x, y + 3)], fill=(0, 230, 0))
        buf = io.BytesIO()
        canvas.save(buf, format="PNG")
        self.image.value = buf.getvalue()

    def _tables(self) -> None:
        out, tre = self.result, self.result["tre"]
        self.summary.value = (
            f"<b>{html.escape(self.controls['method'].value)}</b>: mean TRE "
            f"<b class='{self.css}-tre-mean'>{tre.mean():.2f}</b> mm (before <span class='{self.css}-tre-before'>"
            f"{self.before.mean():.2f}</span> mm), worst {tre.max():.2f} mm · folded voxels "
            f"<span class='{self.css}-folded'>{out['folded']:.2f}</span> % · {out['seconds']:.1f} s · "
            f"{html.escape(self.pair.description)}")
        rows = ["<tr><th>level</th><th>centre</th><th>4 sagittal corners</th><th>4 coronal corners</th><th>worst</th>"
                "<th>before</th></tr>"]
        for n, level in enumerate(("L1", "L2", "L3", "L4", "L5")):
            t, b = tre[9 * n:9 * n + 9], self.before[9 * n:9 * n + 9]
            colour = "#2a2" if t.max() <= 1.0 else ("#c80" if t.max() <= 2.0 else "#c22")
            rows.append(f"<tr class='{self.css}-tre' data-level='{level}'><td>{level}</td><td>{t[0]:.2f}</td>"
                        f"<td>{', '.join(f'{v:.1f}' for v in t[1:5])}</td><td>{', '.join(f'{v:.1f}' for v in t[5:9])}</td>"
                        f"<td style='color:{colour}'>{t.max():.2f}</td><td>{b.mean():.1f}</td></tr>")
        self.table.value = ("<table style='font-size:12px'>" + "".join(rows) + "</table><small>TRE in mm of each landmark "
                            "(body centre, the corners in the mid-sagittal and mid-coronal planes); green ≤ 1 mm, "
                            "orange ≤ 2 mm, red above.</small>")
