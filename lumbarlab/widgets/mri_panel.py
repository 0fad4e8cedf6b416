"""The MRI dashboard's panel: a sagittal lumbar T2 through the zoo's MRI models.

A phantom study (anatomy seed, a Pfirrmann grade per disc, a herniation, the canal's width, the noise) or an
uploaded sagittal T2 (NIfTI, MHA as SPIDER stores it, NRRD, or a zip of one DICOM series) is segmented by
``mri-spine`` (``lumbarlab segment``'s path: checks, any orientation, the model's grid), each disc graded by
``mri-discs`` (``lumbarlab grade``'s path) and explained by the Grad-CAM of its Pfirrmann head. A slab slider walks
through the stack with the levels named; an acceleration control undersamples the shown slab in k-space and shows
the zero-filled and ``mri-recon`` reconstructions next to the fully sampled slab, with their SSIM. A user error
shows in the message line and the panel keeps its last good study.
"""

from __future__ import annotations

import html
import time

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import DISCS
from lumbarlab.widgets.base import Panel

__all__ = ["MRIPanel", "analyse_mri", "reconstruct_slab"]

_ROMAN = ("I", "II", "III", "IV", "V")
#: The phantom study's field: 120 × 220 × 240 mm at 1.25 mm, the zoo's MRI models' grid.
_SHAPE, _SPACING = (96, 176, 192), 1.25


def analyse_mri(mri) -> dict:
    """Run the MRI models on a sagittal T2 ``mri`` (any orientation): the segmentation on the model's grid
    (:class:`lumbarlab.segment_mri.StackSegmentation`), the per-disc grades (:func:`lumbarlab.grade_mri.grade_stack`),
    the Grad-CAM of each disc's Pfirrmann grade (on its crop), and the seconds each step took."""
    from lumbarlab.explain import class_activation_map
    from lumbarlab.grade_mri import grade_stack
    from lumbarlab.segment_mri import segment_stack

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    seg = segment_stack(mri)
    seconds["segment"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    graded = grade_stack(seg)
    seconds["grade"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    targets = [graded["discs"][d]["pfirrmann"] - 1 for d in graded["order"]]
    cams = class_activation_map(graded["net"], graded["crops"], target=targets, spatial_dims=2).maps
    seconds["Grad-CAM"] = time.perf_counter() - t0
    return {"seg": seg, "grades": graded["discs"], "crops": graded["crops"], "order": graded["order"], "cams": cams,
            "seconds": seconds}


def reconstruct_slab(slab: np.ndarray, pixel_mm: float, acceleration: int, seed: int = 0) -> dict:
    """One sagittal slab through accelerated MRI: resampled to ``mri-recon``'s 2 mm pixels (padded to a multiple of
    16), seen through 8 coils, undersampled by a Cartesian mask of ``acceleration`` (the recipe's calibration band),
    and reconstructed by zero-filling and by ``mri-recon``. Returns the fully sampled, zero-filled and network images
    (on the zero-filled image's scale) and the SSIM of each against the fully sampled one; ``acceleration`` 1 is the
    fully sampled slab itself.

    Example:
        >>> out = reconstruct_slab(np.random.default_rng(0).random((80, 90)), 2.0, 4)
        >>> out["full"].shape, 0.0 < out["ssim_zero_filled"] < 1.0
        ((80, 80), True)
    """
    import torch
    from scipy import ndimage

    from lumbarlab import metrics, zoo
    from lumbarlab.datasets.mri_kspace import UndersampledSlices

    if acceleration not in (1, 2, 4, 8):
        raise LumbarLabError(f"acceleration must be 1, 2, 4 or 8, got {acceleration}.")
    recipe = zoo.RECIPES["mri-recon"]
    img = ndimage.zoom(np.asarray(slab, np.float32), pixel_mm / float(recipe.spacing), order=1)
    if min(img.shape) < 16:
        raise LumbarLabError(f"the slab is {img.shape} pixels of {recipe.spacing} mm; accelerated MRI needs 16 or more.")
    keep = [n // 16 * 16 for n in img.shape]  # zero padding would add k-space ringing the network never saw
    start = [(n - k) // 2 for n, k in zip(img.shape, keep, strict=True)]
    img = img[start[0]:start[0] + keep[0], start[1]:start[1] + keep[1]]
    if acceleration == 1:
        full = img / max(float(np.percentile(img, 99.5)), 1e-6)
        return {"full": full, "zero_filled": full, "network": full, "ssim_zero_filled": 1.0, "ssim_network": 1.0}
    x, y = UndersampledSlices(img[None], acceleration=acceleration, seed=seed)[0]
    with torch.inference_mode():
        pred = zoo.load("mri-recon")(x[None])[0, 0].numpy()
    x, y = x[0].numpy(), y[0].numpy()
    return {"full": y, "zero_filled": x, "network": pred, "ssim_zero_filled": metrics.ssim(y, x, data_range=1.0),
            "ssim_network": metrics.ssim(y, pred, data_range=1.0)}


class MRIPanel(Panel):
    """Phantom controls or an upload → labelled stack, per-disc grades with Grad-CAM, accelerated reconstruction.

    Example:
        >>> panel = MRIPanel(pfirrmann={"L4-L5": 5})  # doctest: +SKIP
        >>> panel.result["grades"]["L4-L5"]["pfirrmann"]  # doctest: +SKIP
        5
    """

    css = "ll-mri"

    def __init__(self, seed: int = 900_010, pfirrmann: dict | None = None, herniation_level: str = "L4-L5",
                 herniation: float = 0.0, canal: float = 16.0, noise: float = 0.03):
        import ipywidgets as w

        super().__init__()
        self.study = None
        self.thin = None
        self.truth: dict = {}
        self.source = ""
        self.result: dict = {}
        style, lay = {"description_width": "130px"}, w.Layout(width="310px")
        grades = {d: 1 for d in DISCS} | {k: int(v) for k, v in (pfirrmann or {}).items()}
        self.control("seed", w.IntText(seed, description="Phantom seed", style=style, layout=lay), self._on_case)
        for disc in DISCS:
            self.control(f"pfirrmann_{disc}", w.IntSlider(grades[disc], min=1, max=5, description=f"Pfirrmann {disc}",
                                                          style=style, layout=lay), self._on_case)
        self.control("herniation_level", w.Dropdown(options=list(DISCS), value=herniation_level,
                                                    description="Herniation at", style=style, layout=lay),
                     self._on_case)
        self.control("herniation", w.BoundedFloatText(herniation, min=0.0, max=8.0, step=0.5,
                                                      description="Herniation (mm)", style=style, layout=lay),
                     self._on_case)
        self.control("canal", w.BoundedFloatText(canal, min=6.0, max=20.0, step=0.5, description="Canal AP (mm)",
                                                 style=style, layout=lay), self._on_case)
        self.control("noise", w.BoundedFloatText(noise, min=0.0, max=0.15, step=0.01, description="Noise (σ/max)",
                                                 style=style, layout=lay), self._on_case)
        self.control("slab", w.IntSlider(0, min=0, max=1, description="Slab", style=style, layout=lay), self.draw)
        self.control("acceleration", w.Dropdown(options=[("none", 1), ("2×", 2), ("4×", 4), ("8×", 8)], value=4,
                                                description="Undersampling", style=style, layout=lay),
                     self._draw_recon)
        self.upload = self.volume_upload_control(self._on_volume, "Upload T2")
        self.view = w.Image(format="png", layout=w.Layout(width="900px"))
        self.recon = w.Image(format="png", layout=w.Layout(width="640px"))
        self.recon_text = w.HTML()
        self.report = w.HTML()
        self.widget = w.VBox([
            w.HBox([w.VBox(list(self.controls.values()) + [self.upload, self.message]), self.report]),
            self.view, self.recon_text, self.recon,
        ], layout=w.Layout(min_width="900px"))
        self.guard(self._on_case)

    # -- input ----------------------------------------------------------------------------------------
    def _on_case(self) -> None:
        from lumbarlab.phantom import make_case

        c = self.values()
        grades = {d: int(c[f"pfirrmann_{d}"]) for d in DISCS}
        hern = {c["herniation_level"]: float(c["herniation"])} if c["herniation"] > 0 else {}
        case = make_case(int(c["seed"]), shape=_SHAPE, spacing=_SPACING, modalities=("t2",), pfirrmann=grades,
                         herniation=hern, stenosis=float(c["canal"]), mri_noise=float(c["noise"]))
        image, labels = case.mri_sagittal("T2", 4.0)
        # the same patient as mri-recon's training slices were made: thin sagittal planes on its own 2 mm grid
        from lumbarlab import zoo

        r = zoo.RECIPES["mri-recon"]
        thin = make_case(int(c["seed"]), shape=tuple(r.image_size), spacing=float(r.spacing), modalities=("t2",),
                         pfirrmann=grades, herniation=hern, stenosis=float(c["canal"]),
                         mri_noise=float(c["noise"])).t2
        from lumbarlab.datasets.mri_discs import STENOSIS_GRADES, stenosis_grade
        from lumbarlab.measure.sagittal import sagittal_disc_measurements

        canal = {d: m["canal_ap_mm"] for d, m in sagittal_disc_measurements(labels).items()}
        truth = {d: {"pfirrmann": grades[d], "herniation": hern.get(d, 0.0) >= 2.0,
                     "stenosis": STENOSIS_GRADES[stenosis_grade(canal[d])], "canal_ap_mm": canal[d]} for d in canal}
        self._analyse(image, f"phantom seed {c['seed']}: canal {c['canal']:.1f} mm, herniation "
                             f"{c['herniation']:.1f} mm at {c['herniation_level']}, noise {c['noise']:.2f}", truth, thin)

    def _on_volume(self, name: str, content: bytes) -> None:
        from lumbarlab.widgets.ct_panel import read_ct_upload

        try:
            mri = read_ct_upload(name, content)
        except LumbarLabError as exc:
            raise LumbarLabError(str(exc).replace("upload a CT", "upload a sagittal T2")) from exc
        self._analyse(mri, f"upload {name}: {mri.shape} voxels of {', '.join(f'{s:.2f}' for s in mri.spacing)} mm",
                      {}, None)

    # -- work -----------------------------------------------------------------------------------------
    def _analyse(self, mri, source: str, truth: dict, thin) -> None:
        result = analyse_mri(mri)  # first: a failure keeps the old study
        self.study, self.source, self.truth, self.result, self.thin = mri, source, truth, result, thin
        seg = result["seg"]
        slab = self.controls["slab"]
        mid = int(np.argmax([(seg.classes[i] == seg.class_of(200)).sum() for i in range(seg.classes.shape[0])]))
        with self.holding():
            slab.max = seg.classes.shape[0] - 1
            slab.value = mid
        self.draw()

    def draw(self) -> None:
        if not self.result:
            return
        self.view.value = self._picture()
        self.report.value = self._report_html()
        self._draw_recon()

    def _picture(self) -> bytes:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from lumbarlab.labels import LABEL_NAMES
        from lumbarlab.viz import figure_to_png, label_colours

        seg, i = self.result["seg"], int(self.controls["slab"].value)
        lut = np.array((0,) + seg.values)
        order = self.result["order"]
        fig = plt.figure(figsize=(12.5, 5.0))
        grid = fig.add_gridspec(2, 1 + (len(order) + 1) // 2, width_ratios=[2.2] + [1] * ((len(order) + 1) // 2))
        ax = fig.add_subplot(grid[:, 0])
        ax.imshow(seg.image.array[i].T, cmap="gray", origin="lower")
        labels = lut[seg.classes[i]]
        ax.imshow(label_colours(labels.T, 0.4), origin="lower")
        for value in np.unique(labels):
            if 0 < value < 200:  # vertebrae and discs; the canal needs no name
                yz = np.argwhere(labels == value).mean(axis=0)
                ax.annotate(LABEL_NAMES.get(int(value), str(value)), (yz[0], yz[1]), color="yellow", fontsize=7,
                            ha="center", va="center")
        ax.set_title(f"slab {i} of {seg.classes.shape[0]} (mri-spine labels)", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        for k, disc in enumerate(order):
            a = fig.add_subplot(grid[k % 2, 1 + k // 2])
            a.imshow(self.result["crops"][k, 1], cmap="gray", origin="lower")
            a.imshow(self.result["cams"][k], cmap="jet", alpha=0.35, origin="lower", vmin=0, vmax=1)
            g = self.result["grades"][disc]
            a.set_title(f"{disc}: {_ROMAN[g['pfirrmann'] - 1]} "
                        f"({g['pfirrmann_probabilities'][_ROMAN[g['pfirrmann'] - 1]]:.2f})", fontsize=8)
            a.set_xticks([]), a.set_yticks([])
        fig.suptitle("Grad-CAM of each disc's Pfirrmann grade (mri-discs)", x=0.62, fontsize=9)
        fig.tight_layout()
        return figure_to_png(fig, dpi=72)

    def _draw_recon(self) -> None:
        if not self.result:
            return
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from lumbarlab.viz import figure_to_png

        seg, i = self.result["seg"], int(self.controls["slab"].value)
        r = int(self.controls["acceleration"].value)
        if self.thin is not None:  # a phantom: the thin plane at this slab's position, as mri-recon was trained
            x = seg.grid.index_to_world(np.array([i, 0.0, 0.0]))
            k = int(np.clip(round(float(self.thin.world_to_index(x[None])[0, 0])), 0, self.thin.shape[0] - 1))
            plane, pixel, what = np.asarray(self.thin.array)[k], float(self.thin.spacing[1]), "2 mm plane (as trained)"
        else:  # an upload: its slab on the model grid, resampled — outside mri-recon's training data
            plane, pixel, what = seg.image.array[i], float(seg.grid.spacing[1]), "slab, outside its training data"
        out = reconstruct_slab(plane, pixel, r, seed=i)
        fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.6))
        for ax, key, title in ((axes[0], "full", f"fully sampled {what}"),
                               (axes[1], "zero_filled", f"zero-filled {r}× — SSIM {out['ssim_zero_filled']:.3f}"),
                               (axes[2], "network", f"mri-recon {r}× — SSIM {out['ssim_network']:.3f}")):
            ax.imshow(out[key].T, cmap="gray", origin="lower", vmin=0, vmax=1.2)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
        fig.tight_layout()
        self.recon.value = figure_to_png(fig, dpi=72)
        self.recon_scores = {"ssim_zero_filled": out["ssim_zero_filled"], "ssim_network": out["ssim_network"]}
        self.recon_text.value = (
            f"<p>Undersampled <b class='ll-mri-acceleration'>{r}</b>× ({what}): SSIM zero-filled "
            f"<b class='ll-mri-ssim-zero-filled'>{out['ssim_zero_filled']:.3f}</b>, mri-recon "
            f"<b class='ll-mri-ssim-network'>{out['ssim_network']:.3f}</b></p>")

    def _report_html(self) -> str:
        grades, truth = self.result["grades"], self.truth
        head = ["disc", "Pfirrmann", "herniation", "stenosis"] + (["phantom truth"] if truth else [])
        rows = []
        for disc, g in grades.items():
            roman = _ROMAN[g["pfirrmann"] - 1]
            cells = [disc, f"{roman} ({g['pfirrmann_probabilities'][roman]:.2f})",
                     f"{'yes' if g['herniation'] else 'no'} ({g['herniation_probability']:.2f})",
                     f"{g['stenosis']} ({g['stenosis_probabilities'][g['stenosis']]:.2f})"]
            if truth:
                t = truth.get(disc)
                cells.append("–" if t is None else f"{_ROMAN[t['pfirrmann'] - 1]}, "
                             f"{'herniated' if t['herniation'] else 'no herniation'}, {t['stenosis']} "
                             f"({t['canal_ap_mm']:.1f} mm)")
            kinds = ("disc", "pfirrmann", "herniation", "stenosis", "truth")
            rows.append("<tr>" + "".join(f"<td data-disc='{disc}' class='ll-mri-{kind}'>{html.escape(c)}</td>"
                                         for kind, c in zip(kinds, cells, strict=False)) + "</tr>")  # no truth column for an upload
        seg = self.result["seg"]
        levels = [n for n in ("T12", "L1", "L2", "L3", "L4", "L5", "S1") if n in _names(seg)]
        times = ", ".join(f"{k} {v:.1f} s" for k, v in self.result["seconds"].items())
        return (f"<div style='margin-left:16px'><p>{html.escape(self.source)}</p>"
                f"<p>Levels found: <b class='ll-mri-levels'>{' '.join(levels) or 'none'}</b>; canal/vertebra signal "
                f"ratio {seg.contrast['csf_to_bone']:.2f} (T2: fluid bright)</p>"
                f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{''.join(rows)}</table>"
                f"<p style='color:#555'>{times}. Models trained on the lumbarlab phantom only — a teaching tool, not "
                f"for diagnosis.</p></div>")


def _names(seg) -> set[str]:
    from lumbarlab.labels import LABEL_NAMES

    present = {int(seg.values[k - 1]) for k in np.unique(seg.classes) if k}
    return {LABEL_NAMES[v] for v in present}
