"""The X-ray dashboard's panel: a lateral radiograph through the zoo's three models.

A phantom case (anatomy seed, slip level and size, L1 fracture) or an uploaded PNG/JPEG/DICOM goes
through the slip classifier (with its Grad-CAM), the corner-landmark model (whose corners feed
:func:`lumbarlab.measure.measure_lateral`) and the vertebra/sacrum segmenter. The panel shows the
measurements drawn on the image, the segmentation, the Grad-CAM and a short report; any user error
shows in the message line and the panel keeps working.
"""

from __future__ import annotations

import html
import time

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.widgets.base import Panel

__all__ = ["XrayPanel", "analyse"]

_SEG_COLOURS = np.array([[0, 0, 0], [80, 200, 255], [255, 170, 60]], np.float32)


def analyse(image: np.ndarray, models: dict, spacing: tuple[float, float] | None = (1.0, 1.0)) -> dict:
    """Run the three zoo models on one (256, 256) image; returns probabilities, Grad-CAM, corners,
    the lateral report and the segmentation."""
    import torch

    from lumbarlab.datasets import corners_to_dict
    from lumbarlab.explain import class_activation_map
    from lumbarlab.measure import measure_lateral
    from lumbarlab.zoo import predict_landmarks

    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    with torch.inference_mode():
        seg = models["xray-vertebrae"](x).argmax(1)[0].numpy().astype(np.uint8)
    cam = class_activation_map(models["xray-slip"], x, target=1)  # its forward pass gives the probability too
    corners = corners_to_dict(predict_landmarks(models["xray-corners"], image))
    try:
        report = measure_lateral(corners, spacing)
    except LumbarLabError as exc:  # e.g. collapsed corners on an image that is not a lateral spine
        raise LumbarLabError(f"the landmark model's corners cannot be measured ({exc}); is this a lateral lumbar radiograph?") from exc
    return {"probability": float(cam.probability[0]), "cam": cam.maps[0], "corners": corners, "report": report,
            "segmentation": seg}


class XrayPanel(Panel):
    """Phantom controls or an upload → classifier, landmarks + measurements, segmentation, Grad-CAM;
    for phantom cases also the AP view with its Cobb angle (measured on annotated corners).

    Example:
        >>> panel = XrayPanel()
        >>> panel.set(slip=35, level="L5")
        >>> panel.result["report"].slips["L5"]["meyerding_grade"]
        2
        >>> type(panel.widget).__name__  # display it in a notebook: panel.widget
        'VBox'
    """

    css = "ll-xr"

    def __init__(self, seed: int = 3, slip: float = 30.0, level: str = "L4", fracture: float = 0.0, cobb: float = 0.0,
                 size: int = 256):
        import ipywidgets as w

        from lumbarlab import zoo

        super().__init__()
        self.size = size
        self.models = {name: zoo.load(name) for name in ("xray-slip", "xray-corners", "xray-vertebrae")}
        self.image: np.ndarray | None = None
        self.truth_corners: dict | None = None
        self.truth: dict = {}
        self.spacing: tuple[float, float] = (1.0, 1.0)
        self.source = ""
        self.result: dict = {}
        self.last_seconds = 0.0
        self._ap_key: tuple | None = None
        style, lay = {"description_width": "120px"}, w.Layout(width="300px")
        self.control("seed", w.IntText(seed, description="Phantom seed", style=style, layout=lay), self._on_case)
        self.control("level", w.Dropdown(options=["L3", "L4", "L5"], value=level, description="Slip level",
                                         style=style, layout=lay), self._on_case)
        self.control("slip", w.BoundedFloatText(slip, min=0.0, max=60.0, step=1.0, description="Slip (%)",
                                                style=style, layout=lay), self._on_case)
        self.control("fracture", w.BoundedFloatText(fracture, min=0.0, max=50.0, step=1.0,
                                                    description="L1 height loss (%)", style=style, layout=lay),
                     self._on_case)
        self.control("cobb", w.BoundedFloatText(cobb, min=0.0, max=40.0, step=1.0, description="Cobb angle (°)",
                                                style=style, layout=lay), self._on_cobb)
        self.control("alpha", w.FloatSlider(0.45, min=0.0, max=1.0, step=0.05, description="Grad-CAM opacity",
                                            style=style, layout=lay), self._on_alpha)
        self.upload = self.upload_control(self._on_image, size)
        self.measured = w.Image(format="png", layout=w.Layout(width="340px"))
        self.segmented = w.Image(format="png", layout=w.Layout(width="256px"))
        self.cam = w.Image(format="png", layout=w.Layout(width="256px"))
        self.report = w.HTML()
        self.ap_view = w.Image(format="png", layout=w.Layout(width="220px"))
        self.ap_text = w.HTML()
        self.widget = w.VBox([
            w.HBox([w.VBox(list(self.controls.values()) + [self.upload, self.message]), self.report]),
            w.HBox([self.measured, w.VBox([w.HTML("<b>Segmentation</b> (blue: bodies, orange: sacrum)"), self.segmented]),
                    w.VBox([w.HTML("<b>Grad-CAM</b> for “spondylolisthesis”"), self.cam]),
                    w.VBox([w.HTML("<b>AP view</b> (phantom)"), self.ap_view, self.ap_text])]),
        ], layout=w.Layout(min_width="900px"))
        self._on_case()

    def _pathology(self) -> dict:
        """The lateral view's pathology as the controls set it (the Cobb angle shows in the AP view only)."""
        c = {k: ctl.value for k, ctl in self.controls.items()}
        pathology: dict = {}
        if c["slip"] > 0:
            pathology["slip"] = {c["level"]: float(c["slip"])}
        if c["fracture"] > 0:
            pathology["fracture"] = {"L1": float(c["fracture"])}
        return pathology

    def _load_phantom(self) -> None:
        from lumbarlab.datasets import corners_to_dict, landmarks_from_corners
        from lumbarlab.phantom import sample_params
        from lumbarlab.phantom.fast2d import lateral_radiograph

        c = {k: ctl.value for k, ctl in self.controls.items()}
        if int(c["seed"]) < 0:
            raise LumbarLabError("the phantom seed must be 0 or more.")
        pathology = self._pathology()
        rad = lateral_radiograph(sample_params(int(c["seed"]), **pathology), size=self.size)
        self._draw_ap(int(c["seed"]), pathology, float(c["cobb"]))
        self.image, self.spacing = rad.image, rad.spacing
        self.truth_corners = corners_to_dict(landmarks_from_corners(rad.corners))
        self.truth = {"slip": float(c["slip"]), "level": c["level"], "fracture": float(c["fracture"]),
                      "cobb": float(c["cobb"])}
        self.source = f"phantom seed {c['seed']}: {c['level']} slip {c['slip']:.0f} %, L1 height loss {c['fracture']:.0f} %"

    def _draw_ap(self, seed: int, pathology: dict, cobb: float) -> None:
        """The AP radiograph of the same phantom spine (2 mm voxels, ~0.05 s) with the Cobb angle measured on
        the phantom's annotated AP corners: the zoo has no AP model yet, so this view shows the measurement,
        not a prediction. Redrawn only when the spine it shows changes."""
        from lumbarlab.measure import measure_ap
        from lumbarlab.phantom import make_case
        from lumbarlab.viz import measurement_overlay

        key = (seed, repr(sorted(pathology.items())), cobb)
        if key == self._ap_key:
            return
        case = make_case(seed, cobb=cobb, shape=(96, 64, 120), spacing=2.0, modalities=("xray",), **pathology)
        rep = measure_ap(case.ap.corners, case.ap.spacing)
        self.ap_view.value = measurement_overlay(case.ap.image, case.ap.corners, case.ap.spacing, "ap", dpi=60)
        self.ap_text.value = (f"<p>Cobb {rep.upper_end}–{rep.lower_end}: <b class='ll-xr-cobb-measured'>{rep.cobb:.1f}°</b> "
                              f"(on annotated corners; truth {case.truth['cobb']['angle_deg']:.1f}°)</p>")
        self._ap_key = key

    # -- events -----------------------------------------------------------------------------------
    def _on_case(self) -> None:
        self._load_phantom()
        self.update()

    def _on_cobb(self) -> None:
        if not self.truth:  # an upload is shown: a phantom control brings the phantom case back
            self._on_case()
            return
        cobb = float(self.controls["cobb"].value)
        self._draw_ap(int(self.controls["seed"].value), self._pathology(), cobb)  # the lateral view has no curve
        self.truth["cobb"] = cobb

    def _on_alpha(self) -> None:
        from lumbarlab.explain import overlay

        if self.result:  # only the Grad-CAM picture depends on the opacity
            self.show(self.cam, overlay(self.image, self.result["cam"], alpha=self.controls["alpha"].value))

    def _on_image(self, name: str, image: np.ndarray) -> None:
        # analyse first: a failure keeps the old case. The image was resized to the model's grid, so its
        # pixels have no known size: lengths stay in pixels (the panel shows ratios and angles only)
        result = analyse(image, self.models, None)
        self.image, self.spacing, self.truth_corners, self.truth = image, (1.0, 1.0), None, {}  # square pixels for drawing
        self.ap_view.value, self.ap_text.value, self._ap_key = b"", "<p>AP view: phantom cases only.</p>", None
        self.source = f"upload {name} (resized to {self.size}²; lengths in pixels)"
        self.result = result
        self.draw()

    # -- work ---------------------------------------------------------------------------------------
    def update(self) -> None:
        start = time.perf_counter()
        self.result = analyse(self.image, self.models, self.spacing)
        self.last_seconds = time.perf_counter() - start
        self.draw()

    def draw(self) -> None:
        from lumbarlab.viz import measurement_overlay

        r = self.result
        self.measured.value = measurement_overlay(self.image, r["corners"], self.spacing, "lateral",
                                                  "predicted corners and measurements", truth_corners=self.truth_corners)
        grey = np.clip(self.image, 0, 1)[..., None].repeat(3, -1) * 255
        colours = _SEG_COLOURS[r["segmentation"]]
        mask = (r["segmentation"] > 0)[..., None]
        self.show(self.segmented, np.where(mask, 0.55 * grey + 0.45 * colours, grey).astype(np.uint8))
        self._on_alpha()
        self.report.value = self._report_html()

    def _report_html(self) -> str:
        r, rep = self.result, self.result["report"]
        worst = max(rep.slips.items(), key=lambda kv: kv[1]["slip_percent"])
        prob = r["probability"]
        rows = "".join(
            f"<tr><td>{k}</td><td data-level='{k}' class='ll-xr-slip-value'>{v['slip_percent']:.1f} %</td>"
            f"<td>Meyerding {v['meyerding_grade']}</td></tr>" for k, v in rep.slips.items() if k != "T12")
        l1 = rep.vertebrae.get("L1", {})
        truth = ""
        if self.truth:
            truth = (f"<p style='color:#555'>Phantom truth: {self.truth['level']} slip {self.truth['slip']:.0f} %, "
                     f"L1 height loss {self.truth['fracture']:.0f} %</p>")
            if self.truth["fracture"] > 0:
                truth += ("<p style='color:#b35900'>The zoo's models were trained on slips only: a fracture is "
                          "outside its training data, and the corners (and height loss) drift towards a normal "
                          "vertebra — compare with the truth above.</p>")
        return (
            f"<div style='margin-left:16px'><p>{html.escape(self.source)}</p>{truth}"
            f"<p>Classifier: <b class='ll-xr-class'>{'spondylolisthesis' if prob >= 0.5 else 'normal'}</b> "
            f"(p = {prob:.3f})</p>"
            f"<p>Largest slip (from predicted corners): <b>{worst[0]}</b> "
            f"<b class='ll-xr-slip-measured'>{worst[1]['slip_percent']:.1f} %</b>, "
            f"Meyerding grade <b class='ll-xr-grade'>{worst[1]['meyerding_grade']}</b></p>"
            f"<table><tr><th>level</th><th>slip</th><th>grade</th></tr>{rows}</table>"
            f"<p>L1 height loss {l1.get('height_loss_percent', float('nan')):.1f} % (Genant {l1.get('genant_grade', '–')}); "
            f"lordosis L1–S1 {rep.lordosis_L1_S1:.1f}°, lumbosacral angle {rep.lumbosacral_angle:.1f}°</p>"
            f"<p style='color:#555'>Three models in {1000 * self.last_seconds:.0f} ms. A teaching tool on phantom-trained "
            f"models — not for diagnosis.</p></div>"
        )
