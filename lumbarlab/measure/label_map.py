"""Measurements on 3D label maps (CT or MRI segmentations, and CT for bone density), in any orientation
and spacing, reported in the input's world millimetres (RAS+).

Each vertebra is measured in its own frame (:mod:`lumbarlab.measure.vertebra3d`): whole-vertebra masks
as VerSe and TotalSegmentator write them work, tilted vertebrae work, and a vertebra the field of view cuts
is reported as truncated without heights while the rest of the report still comes out. Label values are
VerSe's (lumbarlab's) or TotalSegmentator v2's (:mod:`lumbarlab.labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import CANAL_LABEL, VERSE_LABEL, VERTEBRAE, detect_convention, to_verse
from lumbarlab.measure.core import bone_density_category, genant_grade, height_loss
from lumbarlab.measure.ct import trabecular_hu
from lumbarlab.measure.landmarks import centroids
from lumbarlab.measure.records import Record
from lumbarlab.measure.vertebra3d import VertebraGeometry, level_geometry, level_value
from lumbarlab.volume import Volume, axcodes, resample

__all__ = ["vertebra_label_map", "mid_sagittal_slice", "heights_from_label_map", "canal_ap_diameter",
           "measure_label_map", "LabelMapReport"]

#: The vertebrae a report walks (VerSe values), top to bottom.
VERTEBRA_LABELS = {VERSE_LABEL[n]: n for n in VERTEBRAE}
_MEASURED = VERTEBRAE[:-1]  # T12 … L5: the sacrum has no body height to grade


def vertebra_label_map(labels: Volume, convention: str = "auto") -> Volume:
    """``labels`` with lumbarlab's (VerSe) values as integers (:func:`lumbarlab.labels.to_verse`)."""
    arr = np.asarray(labels.array)
    if arr.dtype.kind == "f":
        arr = np.rint(arr)
    arr = to_verse(arr.astype(np.int64), convention)
    return labels.with_array(arr.astype(np.uint8 if arr.max(initial=0) < 256 else np.int32))


def heights_from_label_map(labels: Volume, level: str, convention: str = "auto") -> dict[str, float]:
    """Anterior, middle and posterior body heights (mm) of one vertebra, measured in its own frame
    between the six morphometric points (:func:`~lumbarlab.measure.vertebra3d.vertebra_geometry`).

    Example:
        >>> from lumbarlab.phantom import make_case
        >>> case = make_case(3, modalities=(), realism="teaching")  # flat endplates: the rim heights exactly
        >>> h = heights_from_label_map(case.labels, "L2")
        >>> abs(h["posterior"] - case.spine.vertebrae["L2"].hp) < 1.0
        True
    """
    return dict(level_geometry(vertebra_label_map(labels, convention), level).heights)


def mid_sagittal_slice(labels: Volume, level: str, convention: str = "auto",
                       pixel: float = 0.5) -> tuple[np.ndarray, tuple[float, float]]:
    """The labels on the vertebra's own mid-sagittal plane (u = 0 of its frame), as a display image — rows
    superior first, anterior on the left — and its pixel size (row_mm, col_mm). The plane follows the
    vertebra's tilt and rotation, whatever the grid's orientation."""
    labels = vertebra_label_map(labels, convention)
    geo = level_geometry(labels, level)
    v0, v1, w0, w1 = geo.section_extent
    lo = np.array([0.0, v0, w0 - 10.0])
    shape = (1, int(np.ceil((v1 - v0) / pixel)) + 1, int(np.ceil((w1 - w0 + 20.0) / pixel)) + 1)
    plane = resample(labels, shape, (pixel, pixel, pixel), tuple(geo.frame.to_world(lo)), geo.frame.axes, order=0)
    return np.ascontiguousarray(plane.array[0].T[::-1, ::-1]), (pixel, pixel)


def canal_ap_diameter(labels: Volume, level: str, convention: str = "auto") -> float:
    """AP diameter (mm) of the spinal canal at a vertebra, along its own v axis in the mid-sagittal band:
    of the canal label (200) around the body's mid-height when the map has one, else of the bony canal (the
    vertebral foramen, from the posterior wall of the body to the lamina)."""
    labels = vertebra_label_map(labels, convention)
    diameter, _ = _canal(labels, level_geometry(labels, level), level)
    return diameter


def _canal(labels: Volume, geo: VertebraGeometry, level: str) -> tuple[float, str]:
    if np.any(labels.array == CANAL_LABEL):
        h = geo.heights.get("middle", 20.0)
        step = 0.25
        lo = np.array([-3.0, geo.posterior_wall - 40.0, -0.3 * h])
        shape = (13, int(40.0 / step) + 9, int(0.6 * h / step) + 1)
        canal = labels.with_array((np.asarray(labels.array) == CANAL_LABEL).astype(np.float32))
        grid = resample(canal, shape, (0.5, step, step), tuple(geo.frame.to_world(lo)), geo.frame.axes, order=1)
        section = np.asarray(grid.array).mean(axis=0) >= 0.5  # (v, w)
        lengths = section.sum(axis=0) * step
        lengths = lengths[lengths > 0]
        if len(lengths):
            return float(np.median(lengths)), "canal label"
    if geo.bony_canal_ap is not None:
        return float(geo.bony_canal_ap), "bony canal"
    raise LumbarLabError(f"{level}: the label map has no spinal canal (label {CANAL_LABEL}) and the vertebra no lamina "
                         "behind its body to measure the bony canal against.")


@dataclass
class LabelMapReport(Record):
    """Per-vertebra measurements of a 3D label map (and CT when given); lengths in mm, density in HU.

    ``vertebrae`` maps a level to its entry: ``centroid_mm`` (the whole label's), ``body_centre_mm``,
    ``truncated``, and when measured ``anterior/middle/posterior_height_mm`` (with ``height_uncertainty_mm``, how
    far the voxels let the worst of them slide: near the slice spacing when the endplates lie along thick
    slices; it leaves out a slope the voxels cannot pin, which deformed endplates on thick slices can add),
    ``height_loss_percent``,
    ``genant_grade``, ``canal_ap_mm`` (with ``canal_source``), ``trabecular_hu`` and ``bone_density``; a level
    that could not be measured carries ``error`` (or, when the image's edge cuts it, ``note``) instead, and the
    others are still reported.
    """

    vertebrae: dict[str, dict] = field(default_factory=dict)
    label_convention: str = "verse"
    orientation: str = "RAS"
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def rows(self) -> list[dict]:
        return [{"level": k, **{kk: vv for kk, vv in v.items() if not isinstance(vv, list)}}
                for k, v in self.vertebrae.items()]


def measure_label_map(labels: Volume, ct: Volume | None = None, convention: str = "auto",
                      edge_mm: float = 0.0) -> LabelMapReport:
    """Centroid, body heights, height loss and Genant grade, canal diameter (and trabecular HU with its
    Pickhardt category when a CT on the same grid is given) for every vertebra T12–L5 present.

    Works on any orientation and spacing and on whole-vertebra masks; a vertebra whose body reaches the
    edge of the image is marked ``truncated`` and gets its centroid only; a vertebra that cannot be measured
    gets an ``error`` entry; neither stops the report.

    Args:
        labels: a label map (VerSe/lumbarlab or TotalSegmentator v2 values).
        ct: the CT in HU on the same grid, for trabecular bone density.
        convention: ``"verse"``, ``"totalsegmentator"`` or ``"auto"`` (:func:`lumbarlab.labels.detect_convention`).
        edge_mm: a vertebra that comes within this distance of the image's border counts as cut by the field of
            view (``truncated``) even if it does not touch it — a predicted mask may stop a voxel short of the
            border where the true vertebra goes on (``lumbarlab segment`` passes twice its model's voxel size).

    Example:
        >>> from lumbarlab.phantom import make_case
        >>> case = make_case(3, modalities=("ct",), bmd=80)
        >>> rep = measure_label_map(case.labels, case.ct)
        >>> rep.vertebrae["L1"]["bone_density"], rep.vertebrae["T12"]["truncated"]
        ('osteoporosis', True)
    """
    if convention == "auto":
        convention = detect_convention(np.unique(np.rint(np.asarray(labels.array))))
    labels = vertebra_label_map(labels, convention)
    if ct is not None and (ct.shape != labels.shape or not np.allclose(ct.affine, labels.affine, atol=1e-3)):
        raise LumbarLabError(f"CT {ct.shape} and labels {labels.shape} are not on one grid; resample one onto the "
                             "other first (lumbarlab.volume.resample, order=0 for the labels).")
    rep = LabelMapReport(label_convention=convention, orientation=axcodes(labels),
                         spacing_mm=tuple(round(s, 4) for s in labels.spacing))
    cents = centroids(labels, VERTEBRA_LABELS)
    present = [n for n in _MEASURED if n in cents]
    if not present:
        raise LumbarLabError("the label map holds no vertebra of T12–L5 (VerSe values 19–24, TotalSegmentator 27–32).")
    geos: dict[str, VertebraGeometry] = {}
    for n in present:
        entry: dict = {"centroid_mm": cents[n]}
        try:
            geo = level_geometry(labels, n)
        except LumbarLabError as exc:
            if _at_edge(labels, n):  # most of it lies outside the image: nothing to measure, and no fault
                entry.update(truncated=True, note=f"cut by the edge of the image ({exc})")
            else:
                entry.update(truncated=False, error=str(exc))
            rep.vertebrae[n] = entry
            continue
        truncated = geo.truncated or (edge_mm > 0 and _at_edge(labels, n, edge_mm))
        entry.update(body_centre_mm=geo.frame.origin.round(3).tolist(), truncated=truncated)
        if not truncated:  # a body cut by the field of view has no heights to measure
            geos[n] = geo
            entry.update({f"{k}_height_mm": v for k, v in geo.heights.items()})
            entry["height_uncertainty_mm"] = round(max(geo.uncertainty.values()), 3)
        rep.vertebrae[n] = entry
    for n, geo in geos.items():
        entry = rep.vertebrae[n]
        i = VERTEBRAE.index(n)
        refs = [geos[m].heights["posterior"] for m in (VERTEBRAE[i - 1] if i else None, VERTEBRAE[i + 1]) if m in geos]
        try:
            loss = height_loss(geo.heights, float(np.mean(refs)) if len(refs) == 2 else None)
            entry.update({"height_loss_percent": loss, "genant_grade": genant_grade(loss)})
        except LumbarLabError as exc:
            entry.setdefault("error", str(exc))
        try:
            entry["canal_ap_mm"], entry["canal_source"] = _canal(labels, geo, n)
        except LumbarLabError:  # a body-only mask without a canal label: nothing to measure the canal on
            entry["canal_ap_mm"], entry["canal_source"] = None, "none (no canal label, no lamina in the mask)"
        if ct is not None:
            try:
                hu = trabecular_hu(ct, labels, n, geometry=geo)
                entry.update({"trabecular_hu": hu, "bone_density": bone_density_category(hu)})
            except LumbarLabError as exc:
                entry.setdefault("error", str(exc))
    return rep


def _at_edge(labels: Volume, level: str, within_mm: float = 0.0) -> bool:
    """Whether ``level`` touches the image's border, or comes within ``within_mm`` of it."""
    idx = np.argwhere(labels.array == level_value(labels, level))
    margin = np.floor(within_mm / np.asarray(labels.spacing)).astype(int)
    return bool(np.any(idx.min(axis=0) <= margin) or np.any(idx.max(axis=0) >= np.array(labels.shape) - 1 - margin))
