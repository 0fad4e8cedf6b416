"""PhantomExplorer: sliders for each pathology that re-render the phantom in CT, MRI and X-ray."""

from __future__ import annotations

import html
import time

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.widgets.base import Panel

__all__ = ["PhantomExplorer", "truth_rows"]


def truth_rows(truth: dict) -> list[tuple[str, str]]:
    """The ground-truth numbers a clinician reads first, as (name, value) pairs."""
    from lumbarlab.measure import genant_grade

    rows = []
    slips = {k: v for k, v in truth["slip"].items() if v["meyerding_grade"] > 0}
    rows.append(("Spondylolisthesis", ", ".join(
        f"{k} {v['slip_percent']:.1f} % (Meyerding {v['meyerding_grade']})" for k, v in slips.items()) or "none"))
    cobb = truth["cobb"]
    rows.append(("Cobb angle", f"{cobb['angle_deg']:.1f}° ({cobb['upper_end']}–{cobb['lower_end']})"))
    rows.append(("Lordosis L1–S1", f"{truth['lordosis_L1_S1_deg']:.1f}°"))
    frac = {k: v for k, v in truth["vertebrae"].items() if v["height_loss_percent"] > 0}
    rows.append(("Fracture", ", ".join(
        f"{k} −{v['height_loss_percent']:.0f} % (Genant {genant_grade(v['height_loss_percent'])})"
        for k, v in frac.items()) or "none"))
    bd = truth["bone_density"]
    rows.append(("Trabecular bone", f"{bd['trabecular_hu']:.0f} HU ({bd['category']})"))
    rows.append(("Pfirrmann", ", ".join(f"{k}: {v['pfirrmann']}" for k, v in truth["discs"].items())))
    hern = {k: v["herniation_mm"] for k, v in truth["discs"].items() if v["herniation_mm"] > 0}
    rows.append(("Herniation", ", ".join(f"{k} {mm:.0f} mm" for k, mm in hern.items()) or "none"))
    rows.append(("Canal AP diameter", f"{truth['canal_ap_mm']:.1f} mm"))
    return rows


def _changes(old, new) -> list[tuple[str, str]]:
    """How much each modality changed between two renders of the same grid."""
    if old is None or old.grid != new.grid:
        return []
    out = []
    changed = np.count_nonzero(old.labels.array != new.labels.array) / old.labels.array.size
    out.append(("labels", f"{100 * changed:.2f} % of voxels relabelled"))
    for name in ("ct", "t1", "t2"):
        a, b = getattr(old, name).array, getattr(new, name).array
        out.append((name.upper(), f"mean |Δ| {float(np.abs(a - b).mean()):.2f}"))
    for view in ("lateral", "ap"):
        a, b = getattr(old, view).image, getattr(new, view).image
        out.append((f"X-ray {view}", f"mean |Δ| {float(np.abs(a - b).mean()):.4f}"))
    return out


class PhantomExplorer(Panel):
    """A panel of pathology controls over one phantom case, shown in every modality.

    Each control re-renders the case (about half a second on a laptop) and shows CT, T1 and
    T2 mid-sagittal slices with label overlays, lateral and AP radiographs with the corner
    landmarks, the ground truth, and how much each modality changed.

    Example:
        >>> explorer = PhantomExplorer(seed=3)
        >>> explorer.set(slip_percent=30)      # same as moving the slider
        >>> explorer.case.truth["slip"]["L4"]["meyerding_grade"]
        2
        >>> type(explorer.widget).__name__     # display it in a notebook: explorer.widget
        'VBox'
    """

    css = "ll-pe"

    def __init__(self, seed: int = 0, shape=(128, 128, 176), spacing: float = 1.25):
        import ipywidgets as w

        super().__init__()
        self.shape, self.spacing = tuple(shape), spacing
        self.case = None
        self.last_seconds = 0.0
        style = {"description_width": "150px"}
        lay = w.Layout(width="420px")
        controls = {
            "seed": w.IntText(value=seed, description="Seed (anatomy)", style=style, layout=lay),
            "slip_level": w.Dropdown(options=["L1", "L2", "L3", "L4", "L5"], value="L4",
                                     description="Slip level", style=style, layout=lay),
            "slip_percent": w.FloatSlider(0.0, min=0, max=100, step=1, description="Slip (%)", style=style, layout=lay),
            "cobb": w.FloatSlider(0.0, min=0, max=40, step=1, description="Cobb angle (°)", style=style, layout=lay),
            "fracture_level": w.Dropdown(options=["L1", "L2", "L3", "L4", "L5"], value="L1",
                                         description="Fracture level", style=style, layout=lay),
            "fracture_percent": w.FloatSlider(0.0, min=0, max=60, step=1, description="Height loss (%)",
                                              style=style, layout=lay),
            "fracture_type": w.Dropdown(options=["wedge", "biconcave", "crush"], value="wedge",
                                        description="Fracture type", style=style, layout=lay),
            "bmd": w.FloatSlider(180.0, min=40, max=300, step=5, description="Bone density (HU)", style=style, layout=lay),
            "disc": w.Dropdown(options=["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"], value="L4-L5",
                               description="Disc", style=style, layout=lay),
            "pfirrmann": w.IntSlider(1, min=1, max=5, description="Pfirrmann grade", style=style, layout=lay),
            "herniation": w.FloatSlider(0.0, min=0, max=10, step=0.5, description="Herniation (mm)", style=style, layout=lay),
            "canal": w.FloatSlider(16.0, min=6, max=22, step=0.5, description="Canal AP (mm)", style=style, layout=lay),
            "overlay": w.Checkbox(value=True, description="Label overlays", style=style, layout=lay),
        }
        for name, ctl in controls.items():
            self.control(name, ctl, self._render)
        self.image = w.Image(format="png", layout=w.Layout(width="100%"))
        self.truth_html = w.HTML()
        self.status = w.HTML()
        self.widget = w.VBox([
            w.HBox([w.VBox(list(self.controls.values())), w.VBox([self.truth_html, self.message, self.status])]),
            self.image,
        ])
        self.update()

    # -- state ------------------------------------------------------------------------------
    def parameters(self) -> dict:
        """The pathology keyword arguments the controls stand for."""
        c = {k: ctl.value for k, ctl in self.controls.items()}
        params: dict = {"cobb": c["cobb"], "bmd": c["bmd"], "stenosis": c["canal"], "fracture_type": c["fracture_type"]}
        if c["slip_percent"] > 0:
            params["slip"] = {c["slip_level"]: c["slip_percent"]}
        if c["fracture_percent"] > 0:
            params["fracture"] = {c["fracture_level"]: c["fracture_percent"]}
        params["pfirrmann"] = {c["disc"]: c["pfirrmann"]}
        if c["herniation"] > 0:
            params["herniation"] = {c["disc"]: c["herniation"]}
        return params

    _grid = None
    _grid_seed: int | None = None

    def update(self) -> None:
        """Re-render the case from the controls; bad input shows in the message line (the last good render
        stays)."""
        self.guard(self._render)

    def _render(self) -> None:
        from lumbarlab.phantom import make_case, sample_params
        from lumbarlab.viz import case_overview

        start = time.perf_counter()
        try:
            seed = self.controls["seed"].value
            params = sample_params(seed, **self.parameters())
            if self._grid_seed != seed:  # fix the field of view per anatomy, so images don't jump
                from lumbarlab.phantom.anatomy import build_spine
                from lumbarlab.phantom.voxelize import default_grid

                self._grid = default_grid(build_spine(sample_params(seed)), self.shape, self.spacing)
                self._grid_seed = seed
            case = make_case(params, grid=self._grid)
        except LumbarLabError as exc:
            self.status.value = ""  # the render report no longer describes what the controls say
            raise LumbarLabError(f"Cannot render: {exc}") from exc
        changes = _changes(self.case, case)
        self.case = case
        self.image.value = case_overview(case, overlay=self.controls["overlay"].value)
        self.last_seconds = time.perf_counter() - start
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in truth_rows(case.truth))
        self.truth_html.value = f"<table class='lumbarlab-truth'>{rows}</table>"
        change_rows = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in changes)
        self.status.value = (
            f"<p>Rendered in {self.last_seconds:.2f} s.</p>"
            + (f"<p>Changes since the last render:</p><ul>{change_rows}</ul>" if change_rows else "")
        )
