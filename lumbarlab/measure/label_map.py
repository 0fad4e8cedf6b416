"""Measurements on 3D label maps (and CT): bone density, vertebral heights, canal diameter."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.measure.core import bone_density_category, genant_grade, height_loss, vertebral_heights
from lumbarlab.measure.landmarks import centroids, corners_from_mask
from lumbarlab.measure.records import Record
from lumbarlab.volume import Volume

__all__ = ["trabecular_hu", "mid_sagittal_slice", "heights_from_label_map", "canal_ap_diameter",
           "measure_label_map", "LabelMapReport"]

VERTEBRA_LABELS = {19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5", 26: "S1"}
CANAL = 200


def _vertebra(labels: Volume, level: str) -> int:
    lut = {v: k for k, v in VERTEBRA_LABELS.items()}
    if level not in lut:
        raise LumbarLabError(f"unknown vertebra {level!r}; use one of {', '.join(lut)}.")
    value = lut[level]
    if not np.any(labels.array == value):
        raise LumbarLabError(f"{level} (label {value}) is not in the label map.")
    return value


def trabecular_hu(ct: Volume, labels: Volume, level: str = "L1", erode_mm: float = 4.0) -> float:
    """Median HU of a vertebra's mask eroded by ``erode_mm`` — the trabecular core, free of the
    cortex and of the thin posterior elements (the ROI of Pickhardt et al., Ann Intern Med 2013)."""
    if ct.shape != labels.shape:
        raise LumbarLabError(f"CT {ct.shape} and labels {labels.shape} are not on one grid.")
    value = _vertebra(labels, level)
    mask = labels.array == value
    iterations = [max(int(round(erode_mm / s)), 1) for s in labels.spacing]
    structure = np.zeros((2 * iterations[0] + 1, 2 * iterations[1] + 1, 2 * iterations[2] + 1), bool)
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in structure.shape], indexing="ij")
    structure |= sum(g**2 for g in grid) <= 1.0  # an ellipsoid of erode_mm radius in mm
    core = ndimage.binary_erosion(mask, structure)
    if core.sum() < 10:
        raise LumbarLabError(f"{level}: nothing is left after a {erode_mm} mm erosion; use a smaller erode_mm.")
    return float(np.median(ct.array[core]))


def mid_sagittal_slice(labels: Volume, level: str) -> tuple[np.ndarray, tuple[float, float]]:
    """The sagittal plane through a vertebra's centroid, as a display image (rows superior-first,
    anterior on the left) of labels, and its pixel spacing (row_mm, col_mm). Assumes an axis-aligned
    RAS grid, as the phantom and most CT series are after reorientation."""
    if not np.allclose(np.abs(labels.direction), np.eye(3), atol=1e-3):
        raise LumbarLabError("mid-sagittal measurements need an axis-aligned volume; reorient it to RAS first.")
    value = _vertebra(labels, level)
    i = int(round(np.nonzero(labels.array == value)[0].mean()))
    plane = labels.array[i].T[::-1, ::-1]
    return plane, (labels.spacing[2], labels.spacing[1])


def heights_from_label_map(labels: Volume, level: str) -> dict[str, float]:
    """Anterior, middle and posterior body heights (mm) on the mid-sagittal slice: the body is the
    largest piece of the vertebra's label there, its corners found as on a radiograph, and the
    middle height measured through the mask itself (so a central depression shows)."""
    value = _vertebra(labels, level)
    plane, spacing = mid_sagittal_slice(labels, level)
    mask = plane == value
    corners = corners_from_mask(mask, "left", level)
    h = vertebral_heights(corners, spacing, level)
    # middle height: count body pixels along the line joining the endplate midpoints
    top, bottom = (corners[0] + corners[1]) / 2, (corners[2] + corners[3]) / 2
    n = int(np.ceil(np.linalg.norm(bottom - top) * 4)) + 1
    t = np.linspace(-0.3, 1.3, int(n * 1.6))
    pts = top[None] + t[:, None] * (bottom - top)[None]
    inside = ndimage.map_coordinates(mask.astype(float), [pts[:, 1], pts[:, 0]], order=0, mode="constant") > 0.5
    step_mm = np.linalg.norm((bottom - top) * np.array([spacing[1], spacing[0]])) * (t[1] - t[0])
    h["middle"] = float(inside.sum() * step_mm)
    return h


def canal_ap_diameter(labels: Volume, level: str) -> float:
    """AP diameter (mm) of the spinal canal at a vertebra's mid-height, along that vertebra's
    endplate direction, on the mid-sagittal slice."""
    value = _vertebra(labels, level)
    plane, spacing = mid_sagittal_slice(labels, level)
    canal = plane == CANAL
    if not canal.any():
        raise LumbarLabError(f"{level}: the label map has no spinal canal (label {CANAL}).")
    c = corners_from_mask(plane == value, "left", level)
    d = ((c[0] - c[1]) + (c[3] - c[2])) / 2  # posterior → anterior
    d /= np.linalg.norm(d)
    mid_post = (c[1] + c[2]) / 2  # middle of the posterior wall
    # walk backwards from the posterior wall through the canal
    t = np.arange(0.0, 60.0 / min(spacing), 0.1)
    pts = mid_post[None] - t[:, None] * d[None]
    # linear interpolation puts the edge half-way between an inside and an outside voxel centre
    inside = ndimage.map_coordinates(canal.astype(float), [pts[:, 1], pts[:, 0]], order=1, mode="constant") >= 0.5
    if not inside.any():
        raise LumbarLabError(f"{level}: no canal found behind the vertebral body.")
    step_mm = 0.1 * np.linalg.norm(d * np.array([spacing[1], spacing[0]]))
    return float(inside.sum() * step_mm)


@dataclass
class LabelMapReport(Record):
    """Per-vertebra measurements of a 3D label map (and CT when given)."""

    vertebrae: dict[str, dict] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        return [{"level": k, **{kk: vv for kk, vv in v.items() if not isinstance(vv, list)}}
                for k, v in self.vertebrae.items()]


def measure_label_map(labels: Volume, ct: Volume | None = None) -> LabelMapReport:
    """Centroid, heights, height loss and Genant grade, canal diameter (and trabecular HU with its
    Pickhardt category when a CT is given) for every lumbar vertebra present. A vertebra touching the
    edge of the volume is marked ``truncated`` and gets its centroid only."""
    rep = LabelMapReport()
    cents = centroids(labels, VERTEBRA_LABELS)
    present = [n for n in ("T12", "L1", "L2", "L3", "L4", "L5") if n in cents]
    if not present:
        raise LumbarLabError("the label map holds no vertebra labels (VerSe values 19–24).")
    lut = {v: k for k, v in VERTEBRA_LABELS.items()}
    boxes = ndimage.find_objects(labels.array.astype(np.int64, copy=False))
    truncated = {}
    for n in present:
        sl = boxes[lut[n] - 1]
        truncated[n] = any(s.start == 0 or s.stop == dim for s, dim in zip(sl, labels.shape, strict=True))
    heights = {}
    for n in present:
        if not truncated[n]:  # a vertebra cut by the field of view has no full body to measure
            heights[n] = heights_from_label_map(labels, n)
    for n in present:
        entry: dict = {"centroid_mm": cents[n], "truncated": truncated[n]}
        if n in heights:
            entry.update({f"{k}_height_mm": v for k, v in heights[n].items()})
            i = ("T12", "L1", "L2", "L3", "L4", "L5", "S1").index(n)
            refs = [heights[m]["posterior"] for m in (("T12", "L1", "L2", "L3", "L4", "L5")[i - 1] if i else None,
                                                       ("L1", "L2", "L3", "L4", "L5", "S1")[i]) if m in heights]
            loss = height_loss(heights[n], float(np.mean(refs)) if len(refs) == 2 else None)
            entry.update({"height_loss_percent": loss, "genant_grade": genant_grade(loss)})
        if np.any(labels.array == CANAL) and not truncated[n]:
            entry["canal_ap_mm"] = canal_ap_diameter(labels, n)
        if ct is not None and not truncated[n]:
            hu = trabecular_hu(ct, labels, n)
            entry.update({"trabecular_hu": hu, "bone_density": bone_density_category(hu)})
        rep.vertebrae[n] = entry
    return rep
