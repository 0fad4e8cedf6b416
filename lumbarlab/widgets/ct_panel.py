"""The CT dashboard's panel: a lumbar CT through the zoo's CT models.

A phantom CT (anatomy seed, a fracture's level and height loss, a slip of L4 or L5, bone density, dose) or an uploaded scan (NIfTI,
MHA, NRRD, or a zip of one DICOM series) is segmented by ``ct-vertebrae`` (``lumbarlab segment``'s path: any
orientation and spacing, labels on the scan's own grid), its vertebra centres found by ``ct-centroids``, and each
level measured (heights → Genant grade, trabecular HU → Pickhardt category). At low dose the scan can first go
through ``ct-denoise``. ``ct-density`` classifies the bone density of a cube round L1, explained by its Grad-CAM.
The panel shows sagittal and coronal views with the labels and the centres, the L1 cube with the Grad-CAM, a table
per level (next to the phantom's truth), and on request a 3D view (NiiVue). A user error shows in the message line and the panel keeps
its last good case.
"""

from __future__ import annotations

import html
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.widgets.base import Panel

__all__ = ["CTPanel", "read_ct_upload", "analyse_ct", "density_of_level"]

_LEVELS = ("T12", "L1", "L2", "L3", "L4", "L5")
_VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")


def read_ct_upload(name: str, content: bytes):
    """A :class:`~lumbarlab.volume.Volume` from an uploaded file: NIfTI, MHA or NRRD as they are, or a zip holding
    one DICOM series (read as a folder). Raises LumbarLabError for anything else, naming the file.

    Example:
        >>> read_ct_upload("notes.txt", b"hello")
        Traceback (most recent call last):
        ...
        lumbarlab.errors.LumbarLabError: notes.txt: upload a CT as .nii/.nii.gz, .mha, .nrrd, or a .zip of one DICOM series.
    """
    from lumbarlab.io import read_image

    lower = name.lower()
    if not (lower.endswith(_VOLUME_SUFFIXES) or lower.endswith(".zip")):
        raise LumbarLabError(f"{name}: upload a CT as .nii/.nii.gz, .mha, .nrrd, or a .zip of one DICOM series.")
    with tempfile.TemporaryDirectory(prefix="lumbarlab-upload-") as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(content)
        if lower.endswith(".zip"):
            folder = Path(tmp) / "series"
            try:
                with zipfile.ZipFile(path) as archive:
                    for member in archive.infolist():  # never outside the folder (a zip can name ../ paths)
                        target = (folder / member.filename).resolve()
                        if not str(target).startswith(str(folder.resolve())):
                            raise LumbarLabError(f"{name}: the zip names a path outside itself ({member.filename}).")
                    archive.extractall(folder)
            except zipfile.BadZipFile as exc:
                raise LumbarLabError(f"{name}: not a readable zip file ({exc}).") from exc
            dicom_dirs = sorted({p.parent for p in folder.rglob("*") if p.is_file()})
            if not dicom_dirs:
                raise LumbarLabError(f"{name}: the zip holds no files.")
            path = dicom_dirs[0]
        try:
            volume = read_image(path)
        except LumbarLabError as exc:
            raise LumbarLabError(f"{name}: {exc}") from exc
        except Exception as exc:  # a reader's own error on a damaged file: say which file, keep the panel
            raise LumbarLabError(f"{name}: cannot be read as a CT ({type(exc).__name__}: {exc}).") from exc
    if volume.array.ndim != 3 or min(volume.shape) < 8:
        raise LumbarLabError(f"{name}: a CT volume needs three dimensions of at least 8 voxels, got {volume.shape}.")
    return volume


def density_of_level(ct, labels, level: str = "L1") -> dict | None:
    """``ct-density`` on the 48 mm cube round ``level``'s trabecular core (found on ``labels``, any grid): the crop
    (HU, 2 mm, RAS), the class probabilities (osteoporosis, osteopenia, normal) and the Grad-CAM of the predicted
    class on the crop; None when the level is not in ``labels`` or too small to place its core."""
    import torch

    from lumbarlab import zoo
    from lumbarlab.datasets.ct import DENSITY_CLASSES, DENSITY_WINDOW, normalize_ct
    from lumbarlab.explain import class_activation_map
    from lumbarlab.measure.ct import trabecular_core
    from lumbarlab.segment import to_model_grid
    from lumbarlab.volume import Volume

    recipe = zoo.RECIPES["ct-density"]
    try:
        core = trabecular_core(labels, level)
    except LumbarLabError:
        return None
    centre = labels.index_to_world(np.argwhere(core).mean(axis=0))
    side, spacing = int(recipe.image_size), float(recipe.spacing)
    grid = Volume(np.zeros((side,) * 3, np.uint8), (spacing,) * 3, tuple(centre - spacing * (side - 1) / 2))
    crop = to_model_grid(ct, grid)
    model = zoo.load("ct-density")
    x = torch.from_numpy(normalize_ct(crop.array, window=DENSITY_WINDOW))[None, None]
    cam = class_activation_map(model, x, spatial_dims=3)
    with torch.inference_mode():
        prob = torch.softmax(model(x), 1)[0].numpy()
    return {"level": level, "crop": crop, "probabilities": dict(zip(DENSITY_CLASSES, prob.tolist(), strict=True)),
            "cam": np.asarray(cam.maps[0]), "predicted": DENSITY_CLASSES[int(prob.argmax())]}


def analyse_ct(ct, denoise: bool = False) -> dict:
    """Run the CT models on ``ct`` (HU, any orientation): ``labels`` (on its grid, VerSe values), the segmentation
    ``report`` (levels, heights, Genant, trabecular HU, Pickhardt), ``centres`` (label → world mm, from
    ``ct-centroids``), ``density`` (:func:`density_of_level` at L1, or None), the ``image`` the models saw (denoised
    when asked) and the time each step took."""
    from lumbarlab import zoo
    from lumbarlab.datasets import normalize_ct
    from lumbarlab.datasets.centroids import coarsen
    from lumbarlab.segment import check_ct, model_grid, segment_volume, to_model_grid
    from lumbarlab.zoo.tasks import predict_centroids

    check_ct(ct)
    seconds: dict[str, float] = {}
    if denoise:
        from lumbarlab.denoise import network_denoiser

        t0 = time.perf_counter()
        from lumbarlab.volume import to_canonical

        canonical = to_canonical(ct)
        slices = np.moveaxis(np.asarray(canonical.array, np.float32), 2, 0)
        clean = np.moveaxis(network_denoiser(zoo.load("ct-denoise"))(slices), 0, 2)
        ct = canonical.with_array(clean.astype(np.float32))
        seconds["denoise"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = segment_volume(ct)
    seconds["segment"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    recipe = zoo.RECIPES["ct-centroids"]
    factor = 2  # the localiser's 4 mm grid: the segmenter's 2 mm grid, coarsened
    grid = to_model_grid(ct, model_grid(ct, recipe.spacing / factor))
    coarse = coarsen(grid, factor)
    centres, _ = predict_centroids(zoo.load("ct-centroids"), normalize_ct(coarse.array), coarse, recipe.classes,
                                   recipe.patch)
    seconds["centres"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    density = density_of_level(ct, result.labels, "L1")
    seconds["density"] = time.perf_counter() - t0
    return {"labels": result.labels, "report": result.report, "centres": centres, "image": ct, "seconds": seconds,
            "density": density}


class CTPanel(Panel):
    """Phantom controls or an upload → segmentation, vertebra centres, per-level measurements; a 3D view on request.

    Example:
        >>> panel = CTPanel(fracture=35.0, level="L1")  # doctest: +SKIP
        >>> panel.result["report"]["vertebrae"]["L1"]["genant_grade"]  # doctest: +SKIP
        2
    """

    css = "ll-ct"

    def __init__(self, seed: int = 900_010, level: str = "L1", fracture: float = 35.0, bmd: float = 150.0,
                 dose: float = 1.0, slip: float = 0.0, slip_level: str = "L4"):
        import ipywidgets as w

        super().__init__()
        self.ct = None
        self.truth: dict = {}
        self.source = ""
        self.result: dict = {}
        style, lay = {"description_width": "130px"}, w.Layout(width="310px")
        self.control("seed", w.IntText(seed, description="Phantom seed", style=style, layout=lay), self._on_case)
        self.control("level", w.Dropdown(options=list(_LEVELS[:-1]), value=level, description="Fracture level",
                                         style=style, layout=lay), self._on_case)
        self.control("fracture", w.BoundedFloatText(fracture, min=0.0, max=50.0, step=1.0,
                                                    description="Height loss (%)", style=style, layout=lay),
                     self._on_case)
        self.control("slip_level", w.Dropdown(options=["L4", "L5"], value=slip_level, description="Slip level",
                                              style=style, layout=lay), self._on_case)
        self.control("slip", w.BoundedFloatText(slip, min=0.0, max=40.0, step=1.0, description="Slip (%)",
                                                style=style, layout=lay), self._on_case)
        self.control("bmd", w.BoundedFloatText(bmd, min=40.0, max=260.0, step=5.0, description="Bone density (HU)",
                                               style=style, layout=lay), self._on_case)
        self.control("dose", w.Dropdown(options=[("full", 1.0), ("half", 0.5), ("quarter", 0.25)], value=dose,
                                        description="Dose", style=style, layout=lay), self._on_case)
        self.control("denoise", w.Checkbox(False, description="Denoise first", style=style, layout=lay),
                     self._on_denoise)
        self.upload = self.volume_upload_control(self._on_volume, "Upload CT")
        self.view = w.Image(format="png", layout=w.Layout(width="880px"))
        self.report = w.HTML()
        self.button3d = w.Button(description="Show in 3D (NiiVue)")
        self.button3d.add_class(f"{self.css}-show3d")
        self.button3d.on_click(lambda _b: self.guard(self._show3d))
        self.box3d = w.Box(layout=w.Layout(width="100%"))
        self.widget = w.VBox([
            w.HBox([w.VBox(list(self.controls.values()) + [self.upload, self.message, self.button3d]), self.report]),
            self.view, self.box3d,
        ], layout=w.Layout(min_width="900px"))
        self.guard(self._on_case)

    # -- input ----------------------------------------------------------------------------------------
    def _on_case(self) -> None:
        from lumbarlab.phantom import make_case

        c = self.values()
        pathology: dict = {"fracture": {c["level"]: float(c["fracture"])}} if c["fracture"] > 0 else {}
        if c["slip"] > 0:
            pathology["slip"] = {c["slip_level"]: float(c["slip"])}
        case = make_case(int(c["seed"]), shape=(156, 120, 132), spacing=2.0, modalities=("ct",), bmd=float(c["bmd"]),
                         ct_dose=float(c["dose"]), **pathology)
        from lumbarlab.measure import trabecular_hu

        truth = {lv: case.truth["vertebrae"][lv] for lv in _LEVELS if lv in case.truth["vertebrae"]}
        acq = case.truth["realism"].get("acquisition", {})
        self._analyse(case.ct, f"phantom seed {c['seed']}: {c['level']} height loss {c['fracture']:.0f} %, "
                               f"{c['slip_level']} slip {c['slip']:.0f} %, bone density {c['bmd']:.0f} HU, dose {c['dose']:g}",
                      {"vertebrae": truth, "bmd": float(c["bmd"]), "kvp": float(acq.get("ct_kvp", 120.0)),
                       "phase": str(acq.get("ct_phase", "native")),
                       "roi_hu": trabecular_hu(case.ct, case.labels, "L1")})

    def _on_volume(self, name: str, content: bytes) -> None:
        ct = read_ct_upload(name, content)
        self._analyse(ct, f"upload {name}: {ct.shape} voxels of {', '.join(f'{s:.2f}' for s in ct.spacing)} mm", {})

    def _on_denoise(self) -> None:
        if self.ct is not None:
            self._analyse(self.ct, self.source, self.truth)

    # -- work -----------------------------------------------------------------------------------------
    def _analyse(self, ct, source: str, truth: dict) -> None:
        result = analyse_ct(ct, denoise=bool(self.controls["denoise"].value))  # first: a failure keeps the old case
        self.ct, self.source, self.truth, self.result = ct, source, truth, result
        self.box3d.children = ()
        self.draw()

    def draw(self) -> None:
        self.view.value = self._picture()
        self.report.value = self._report_html()

    def _picture(self) -> bytes:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from lumbarlab.labels import LABEL_NAMES
        from lumbarlab.viz import figure_to_png, label_colours
        from lumbarlab.volume import to_canonical

        image, labels = to_canonical(self.result["image"]), to_canonical(self.result["labels"])
        spine = np.argwhere((labels.array > 0) & (labels.array < 100))
        x = int(round(spine[:, 0].mean())) if len(spine) else image.shape[0] // 2
        y = int(round(spine[:, 1].mean())) if len(spine) else image.shape[1] // 2
        fig, axes = plt.subplots(1, 3, figsize=(11.6, 4.6), gridspec_kw={"width_ratios": [1, 1, 0.8]})
        views = ((axes[0], image.array[x].T, labels.array[x].T, image.spacing[2] / image.spacing[1], 1, "sagittal"),
                 (axes[1], image.array[:, y].T, labels.array[:, y].T, image.spacing[2] / image.spacing[0], 0, "coronal"))
        self._draw_density(axes[2])
        for ax, img, lab, aspect, axis, title in views:
            ax.imshow(img, cmap="gray", vmin=-250, vmax=1250, origin="lower", aspect=aspect)
            ax.imshow(label_colours(lab, alpha=0.4), origin="lower", aspect=aspect)
            for value, centre in self.result["centres"].items():
                ijk = image.world_to_index(np.asarray(centre))
                ax.plot(ijk[axis], ijk[2], "+", color="yellow", ms=9, mew=2)
                ax.annotate(LABEL_NAMES.get(value, str(value)), (ijk[axis], ijk[2]), xytext=(7, -3),
                            textcoords="offset points", color="yellow", fontsize=8)
            ax.set_title(f"{title}: labels (ct-vertebrae), + centres (ct-centroids)", fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
        fig.tight_layout()
        return figure_to_png(fig, dpi=72)

    def _draw_density(self, ax) -> None:
        """The L1 crop's middle axial slice with the Grad-CAM of ct-density's predicted class."""
        d = self.result.get("density")
        ax.set_xticks([]), ax.set_yticks([])
        if d is None:
            ax.set_title("bone density: L1 not found", fontsize=8)
            return
        k = d["crop"].shape[2] // 2
        ax.imshow(d["crop"].array[:, :, k].T, cmap="gray", vmin=-200, vmax=600, origin="lower")
        ax.imshow(d["cam"][:, :, k].T, cmap="jet", alpha=0.35, origin="lower", vmin=0, vmax=1)
        p = d["probabilities"]
        ax.set_title(f"ct-density at L1: {d['predicted']}\nGrad-CAM; p = " +
                     " / ".join(f"{v:.2f}" for v in p.values()), fontsize=8)

    def _report_html(self) -> str:
        rep, truth = self.result["report"], self.truth.get("vertebrae", {})
        found = rep.get("vertebrae", {})
        rows = []
        for lv in _LEVELS:
            m, t = found.get(lv), truth.get(lv)
            if m is None and t is None:
                continue
            m = m or {}
            loss = m.get("height_loss_percent")
            cells = [lv,
                     "–" if loss is None else f"{loss:.0f} %",
                     str(m.get("genant_grade", "–")),
                     "–" if m.get("trabecular_hu") is None else f"{m['trabecular_hu']:.0f}",
                     html.escape(str(m.get("bone_density", "–")))]
            if truth:
                cells += ["–" if t is None else f"{t['height_loss_percent']:.0f} % (grade {t['genant_grade']})"]
            rows.append("<tr>" + "".join(f"<td data-level='{lv}' class='ll-ct-cell'>{c}</td>" for c in cells) + "</tr>")
        head = ["level", "height loss", "Genant", "trabecular HU", "Pickhardt"] + (["phantom truth"] if truth else [])
        grades = [found.get(lv, {}).get("genant_grade", 0) or 0 for lv in _LEVELS]
        worst = max(range(len(_LEVELS)), key=lambda i: grades[i])
        s = self.result["seconds"]
        times = ", ".join(f"{k} {v:.1f} s" for k, v in s.items())
        note = ""
        if rep.get("truncated"):
            note = "<p style='color:#b35900'>The scan cuts a vertebra: its heights are not measured.</p>"
        if "denoise" in s:
            pixel = min(self.result["image"].spacing[:2])
            note += (f"<p style='color:#555'>Denoised by ct-denoise, trained on 1.25 mm axial pixels; this scan's are "
                     f"{pixel:.2f} mm{' — outside its training data' if abs(pixel - 1.25) > 0.3 else ''}.</p>")
        bmd = ""
        if "bmd" in self.truth:  # what the phantom was built with, and what this scan's acquisition makes of it
            bmd = (f" (phantom: bone built at {self.truth['bmd']:.0f} HU for 120 kVp without contrast; this scan "
                   f"{self.truth['kvp']:.0f} kVp, {self.truth['phase']} phase; the same ROI on the true mask reads "
                   f"<span class='ll-ct-l1-roi-true'>{self.truth['roi_hu']:.0f}</span> HU)")
        l1 = found.get("L1", {})
        d = self.result.get("density")
        density = ("<p>ct-density at L1: <b class='ll-ct-density'>" + d["predicted"] + "</b> (" +
                   ", ".join(f"{k} {v:.2f}" for k, v in d["probabilities"].items()) + ")</p>") if d else ""
        return (
            f"<div style='margin-left:16px'><p>{html.escape(self.source)}</p>"
            f"<p>Levels found: <b class='ll-ct-levels'>{' '.join(rep.get('levels_found', [])) or 'none'}</b>; "
            f"centres found: {len(self.result['centres'])}</p>"
            f"<p>Worst Genant grade: <b class='ll-ct-worst-level'>{_LEVELS[worst]}</b> grade "
            f"<b class='ll-ct-worst-grade'>{grades[worst]}</b>; L1 trabecular "
            f"<b class='ll-ct-l1-hu'>{l1.get('trabecular_hu', float('nan')):.0f}</b> HU{bmd}</p>{density}{note}"
            f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{''.join(rows)}</table>"
            f"<p style='color:#555'>{times}. Models trained on the lumbarlab phantom only — a teaching tool, not for "
            f"diagnosis.</p></div>"
        )

    def _show3d(self) -> None:
        from lumbarlab.widgets.view3d import view3d

        if not self.result:
            raise LumbarLabError("no CT yet: choose a phantom case or upload a scan first.")
        self.box3d.children = (view3d(self.result["image"], self.result["labels"]),)
