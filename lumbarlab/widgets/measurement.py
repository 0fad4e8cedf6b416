"""How landmark error becomes grading error: jitter the corners, watch measurements and grades move.

:func:`grade_flip_curve` runs the experiment (many phantom cases, Gaussian landmark error of a
given size, the share of Meyerding grades that change); :class:`LandmarkJitterPanel` shows one
case with jittered landmarks and the measurements drawn on it, beside the curve.
"""

from __future__ import annotations

import html

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.widgets.base import Panel

__all__ = ["grade_flip_curve", "LandmarkJitterPanel", "jitter"]


def jitter(corners: dict[str, np.ndarray], sd_mm: float, spacing, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Corners moved by isotropic Gaussian noise of ``sd_mm`` (converted to pixels per axis)."""
    scale = np.array([sd_mm / spacing[1], sd_mm / spacing[0]])
    return {k: v + rng.normal(0.0, 1.0, v.shape) * scale for k, v in corners.items()}


def grade_flip_curve(sds_mm=(0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0), n_cases: int = 200, seed: int = 0,
                     level: str = "L4") -> dict[str, list[float]]:
    """For each landmark error (mm): mean absolute slip error (%) and share of Meyerding grades
    that differ from the truth, over ``n_cases`` phantom spines with slips of 0–60 % at ``level``."""
    from lumbarlab.measure import meyerding_grade, meyerding_slip
    from lumbarlab.phantom import sample_params
    from lumbarlab.phantom.anatomy import build_spine

    lower = {"L3": "L4", "L4": "L5", "L5": "S1"}.get(level)
    if lower is None:
        raise LumbarLabError(f"level must be L3, L4 or L5, got {level!r}.")
    rng = np.random.default_rng([seed, 41])
    cases = []
    for i in range(n_cases):
        slip = float(rng.uniform(0.0, 60.0))
        spine = build_spine(sample_params(seed * 7919 + i, slip={level: slip}))
        pair = {}
        for name in (level, lower):
            v = spine.vertebrae[name]
            c = v.to_world(v.lateral_corners_local())
            pair[name] = np.stack([-c[:, 1], -c[:, 2]], 1)  # lateral view in mm, anterior left
        cases.append((slip, pair))
    out = {"sd_mm": [], "mean_abs_slip_error": [], "grade_flip_rate": []}
    for sd in sds_mm:
        errors, flips = [], []
        for slip, pair in cases:
            noisy = jitter(pair, sd, (1.0, 1.0), rng)
            measured = meyerding_slip(noisy[level], noisy[lower], names=(level, lower))
            errors.append(abs(measured - slip))
            flips.append(meyerding_grade(measured) != meyerding_grade(slip))
        out["sd_mm"].append(float(sd))
        out["mean_abs_slip_error"].append(float(np.mean(errors)))
        out["grade_flip_rate"].append(float(np.mean(flips)))
    return out


class LandmarkJitterPanel(Panel):
    """A slider of landmark error (mm) over one phantom radiograph and the grade-flip curve.

    Example:
        >>> panel = LandmarkJitterPanel(seed=1, curve=grade_flip_curve(sds_mm=(0.0, 2.0), n_cases=10))
        >>> panel.set(sd=0.0); round(panel.measured()[1].slips["L4"]["slip_percent"], 1)
        24.0
    """

    css = "ll-jitter"

    def __init__(self, seed: int = 0, slip: float = 24.0, fracture: float = 22.0, curve: dict | None = None, size: int = 256):
        import ipywidgets as w

        super().__init__()
        from lumbarlab.phantom import sample_params
        from lumbarlab.phantom.fast2d import lateral_radiograph

        self.rad = lateral_radiograph(sample_params(seed, slip={"L4": slip}, fracture={"L1": fracture}), size=size)
        self.curve = curve if curve is not None else grade_flip_curve(n_cases=100, seed=seed)
        self.seed = seed
        self.slider = self.control("sd", w.FloatSlider(0.0, min=0.0, max=4.0, step=0.25,
                                                       description="Landmark error (mm)",
                                                       style={"description_width": "150px"},
                                                       layout=w.Layout(width="460px")), self.update)
        self.image = w.Image(format="png")
        self.text = w.HTML()
        self.curve_view = w.Image(format="png")
        self._curve_base = None
        self.widget = w.VBox([self.slider, self.message, w.HBox([self.image, w.VBox([self.curve_view, self.text])])])
        self.guard(self.update)

    def measured(self, sd_mm: float | None = None):
        from lumbarlab.measure import measure_lateral

        sd = self.slider.value if sd_mm is None else sd_mm
        rng = np.random.default_rng([self.seed, int(round(sd * 100))])
        corners = jitter(self.rad.corners, sd, self.rad.spacing, rng)
        return corners, measure_lateral(corners, self.rad.spacing)

    def _curve_background(self):
        """The grade-flip curve drawn once with matplotlib, as RGB pixels, and the pixel column of each σ and the
        rows of the plot area, so each move only draws its marker line (matplotlib per move cost ~100 ms)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(3.6, 3.0), dpi=80)
        ax.plot(self.curve["sd_mm"], [100 * r for r in self.curve["grade_flip_rate"]], "o-")
        ax.set_xlim(-0.1, 4.1)
        ax.set_xlabel("landmark error σ (mm)")
        ax.set_ylabel("Meyerding grades changed (%)")
        fig.tight_layout()
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        height = rgb.shape[0]
        (x0, _), (x1, _) = ax.transData.transform([(0.0, 0.0), (1.0, 0.0)])
        bottom, top = ax.bbox.get_points()[0][1], ax.bbox.get_points()[1][1]
        plt.close(fig)
        column = lambda sd: x0 + (x1 - x0) * sd  # noqa: E731 - display x is linear in σ
        return rgb, column, (height - top, height - bottom)

    def _curve_png(self, sd: float) -> bytes:
        from PIL import Image, ImageDraw

        from lumbarlab.widgets.svg import encode_png

        if self._curve_base is None:
            self._curve_base = self._curve_background()
        rgb, column, (row_top, row_bottom) = self._curve_base
        picture = Image.fromarray(rgb)
        draw, x = ImageDraw.Draw(picture), float(column(sd))
        for y in np.arange(row_top, row_bottom, 8.0):  # dashed, as the old axvline
            draw.line([(x, float(y)), (x, float(min(y + 5, row_bottom)))], fill=(214, 39, 40), width=2)
        return encode_png(np.asarray(picture))

    def update(self) -> None:
        from lumbarlab.viz import measurement_overlay

        corners, rep = self.measured()
        overlay = measurement_overlay(self.rad.image, corners, self.rad.spacing, "lateral",
                                      f"landmark error σ = {self.slider.value:.2f} mm",
                                      truth_corners=self.rad.corners if self.slider.value > 0 else None)
        truth = self.rad.truth["slip_percent"]["L4"]
        self.image.value = overlay
        self.curve_view.value = self._curve_png(self.slider.value)
        s = rep.slips["L4"]
        self.text.value = (
            f"<p>L4 slip: truth {truth:.1f} %, measured <b class='ll-measured-slip'>{s['slip_percent']:.1f} %</b> "
            f"(Meyerding {s['meyerding_grade']})<br>L1 height loss: measured "
            f"{rep.vertebrae['L1']['height_loss_percent']:.1f} % (Genant {rep.vertebrae['L1']['genant_grade']})</p>"
            f"<p>{html.escape('Blue: true corners; yellow: jittered ones the measurement used.')}</p>"
        )
