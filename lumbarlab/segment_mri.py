"""Segment a user's sagittal lumbar MRI with a zoo model (``mri-spine``): vertebrae, discs and the spinal canal,
on the input's own grid, in SPIDER's label values when the input is a SPIDER ``.mha`` and lumbarlab's otherwise.

The steps (each one a function, so a lesson can show them one at a time):

1. :func:`check_sagittal_mri` — refuse what is not a sagittal MR stack: a CT (Hounsfield units), a 2D image,
   an axial or coronal series, or a series whose DICOM header says T1;
2. :func:`mri_model_grid` and :func:`to_mri_grid` — an axis-aligned RAS+ grid that keeps the input's sagittal
   slabs (or makes 3.75 mm slabs of a thin-slice 3D sequence) at the model's in-plane pixel size;
3. :func:`lumbarlab.zoo.tasks.segment_sagittal_stack` — the 2.5D network slab by slab, then the vertebra
   clean-up in 3D;
4. :func:`check_t2_contrast` — on T2 the canal's fluid is brighter than the vertebral bodies' marrow; on T1 it
   is darker. A T1 stack without a header (NIfTI, MHA) is refused here, before anything is written;
5. :func:`lumbarlab.segment.labels_to_grid` — the labels back on the input grid.

Example:
    >>> sequence_from_meta({"series_description": "SAG T1 TSE"}), sequence_from_meta({"echo_time_ms": 96.0})
    ('T1', 'T2')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.segment import SegmentResult, labels_to_grid
from lumbarlab.volume import Volume

__all__ = ["check_sagittal_mri", "sequence_from_meta", "sagittal_axis", "mri_model_grid", "to_mri_grid",
           "check_t2_contrast", "StackSegmentation", "segment_stack", "segment_mri_volume", "segment_mri_file", "is_spider_file", "MAX_TILT_DEG"]

#: A stack whose slab normal lies more than this from the left-right axis is not sagittal. Clinical sagittal
#: series are planned along the spine and tilt a few degrees; 30° leaves room for a scoliotic plan.
MAX_TILT_DEG = 30.0
#: Slab thickness the model was trained on (4 mm slabs at 1.25 mm voxels), used for thin-slice 3D input.
SLAB_MM = 3.75
#: Thinner slices than this along left-right are a 3D (isotropic) sequence and are averaged into slabs.
THIN_MM = 2.5
#: SPIDER's image names: ``<case>_t1.mha``, ``<case>_t2.mha``, ``<case>_t2_SPACE.mha`` (van der Graaf et al. 2024).
SPIDER_NAME = re.compile(r"^[A-Za-z0-9]+_(t1|t2|t2_SPACE)\.mha$")


def sequence_from_meta(meta: dict) -> str | None:
    """'T1', 'T2' or None (unknown) from what a DICOM header states: the series description first (``T1``,
    ``T2``, ``STIR``, ``FLAIR`` in it), else the echo time — T2 weighting needs a long TE (≥ 60 ms), T1 a short TE
    (≤ 30 ms) with a short TR (≤ 1000 ms) (Westbrook, *MRI in Practice*, 5th ed., ch. 2). STIR counts as T2 (fluid
    bright), FLAIR as neither."""
    text = str(meta.get("series_description", "") or "").upper()
    if re.search(r"T2|STIR", text):
        return "T2"
    if re.search(r"T1", text):
        return "T1"
    te, tr = meta.get("echo_time_ms"), meta.get("repetition_time_ms")
    if te is not None and float(te) >= 60.0:
        return "T2"
    if te is not None and float(te) <= 30.0 and (tr is None or float(tr) <= 1000.0):
        return "T1"
    return None


def sagittal_axis(volume: Volume) -> tuple[int, float]:
    """The voxel axis of ``volume`` that points most nearly left-right, and its angle to the left-right axis in
    degrees (0 for a true sagittal stack).

    Example:
        >>> from lumbarlab.volume import reorient
        >>> sagittal_axis(reorient(Volume(np.zeros((8, 30, 40), np.float32), (4.0, 1.0, 1.0)), "PIL"))
        (2, 0.0)
    """
    direction = np.asarray(volume.direction, float)
    return _axis_angle(volume, int(np.argmax(np.abs(direction[0]) / np.linalg.norm(direction, axis=0))))


def check_sagittal_mri(volume: Volume, sequence: str = "T2") -> None:
    """Raise :class:`LumbarLabError` unless ``volume`` can be a sagittal ``sequence`` MR stack: a DICOM modality of
    MR (when stated), a header that does not name another weighting (:func:`sequence_from_meta`), 3D with at
    least 3 slabs and 32 × 32 pixels, not constant, non-negative intensities (a CT has air at −1000 HU), and its
    thickest axis (or, when the voxels are nearly isotropic, any axis) within :data:`MAX_TILT_DEG` of left-right.

    Example:
        >>> check_sagittal_mri(Volume(np.random.rand(40, 40, 20).astype(np.float32), (0.6, 0.6, 4.0)))
        Traceback (most recent call last):
        ...
        lumbarlab.errors.LumbarLabError: the slices are axial (the thick axis is 3, 90° from left-right), not sagittal; lumbarlab segment --model mri-spine needs a sagittal series (the side view of the spine). Choose the series whose description says SAG.
    """
    modality = str(volume.meta.get("modality", "") or "").upper()
    if modality and modality not in ("MR", "OT"):
        raise LumbarLabError(f"the image is a DICOM {modality}, not an MR; the MRI models need a sagittal "
                             f"{sequence}-weighted MR series.")
    stated = sequence_from_meta(volume.meta)
    if stated is not None and stated != sequence.upper():
        raise LumbarLabError(f"the series is {stated}-weighted by its header "
                             f"({volume.meta.get('series_description') or 'echo time'}); the model needs "
                             f"{sequence}: choose the series named like 'SAG {sequence}'.")
    if len(volume.shape) != 3 or min(volume.shape) < 3 or sorted(volume.shape)[1] < 32:
        raise LumbarLabError(f"the image has shape {volume.shape}: a sagittal stack needs at least 3 slices of "
                             "32 × 32 pixels.")
    a = np.asarray(volume.array)
    if not np.isfinite(a).all():
        raise LumbarLabError("the image holds NaN or infinite values.")
    lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        raise LumbarLabError(f"the image is empty (every voxel holds {lo:g}).")
    if float(np.percentile(a.ravel()[:: max(a.size // 1_000_000, 1)], 1.0)) < -100.0:
        raise LumbarLabError("the image has large negative values, as a CT in Hounsfield units has (air −1000); "
                             "the MRI models need an MR series. Use --model ct-vertebrae for a CT.")
    axis, tilt = sagittal_axis(volume)
    spacing = np.asarray(volume.spacing, float)
    thick = int(np.argmax(spacing))
    anisotropic = spacing[thick] > 1.5 * np.min(spacing)
    if anisotropic and thick != axis:
        _, off = _axis_angle(volume, thick)
        plane = "axial" if _points_head_feet(volume, thick) else "coronal"
        raise LumbarLabError(f"the slices are {plane} (the thick axis is {thick + 1}, {off:.0f}° from left-right), "
                             f"not sagittal; lumbarlab segment --model mri-spine needs a sagittal series (the side "
                             "view of the spine). Choose the series whose description says SAG.")
    if tilt > MAX_TILT_DEG:
        raise LumbarLabError(f"the stack's slices tilt {tilt:.0f}° from the sagittal plane (at most "
                             f"{MAX_TILT_DEG:.0f}°); choose the sagittal series.")


def _axis_angle(volume: Volume, axis: int) -> tuple[int, float]:
    """``axis`` and its angle to the left-right axis in degrees."""
    d = np.asarray(volume.direction, float)[:, axis]
    return axis, float(np.degrees(np.arccos(np.clip(abs(d[0]) / np.linalg.norm(d), -1.0, 1.0))))


def _points_head_feet(volume: Volume, axis: int) -> bool:
    d = np.abs(np.asarray(volume.direction, float)[:, axis])
    return bool(np.argmax(d) == 2)


def mri_model_grid(volume: Volume, in_plane: float, slab: float = SLAB_MM) -> Volume:
    """An empty axis-aligned RAS+ grid over the world box of ``volume``: ``in_plane`` mm along y and z, and along
    x the input's own slab spacing — or ``slab`` mm when the input's slices are thinner than :data:`THIN_MM`
    (a 3D sequence, averaged into slabs by :func:`to_mri_grid`).

    Example:
        >>> g = mri_model_grid(Volume(np.zeros((15, 320, 320), np.float32), (4.4, 0.6, 0.6)), 1.25)
        >>> g.shape, g.spacing
        ((15, 154, 154), (4.4, 1.25, 1.25))
    """
    axis, _ = sagittal_axis(volume)
    step = float(volume.spacing[axis])
    x_mm = step if step >= THIN_MM else float(slab)
    corners = np.array([[i, j, k] for i in (0, volume.shape[0] - 1) for j in (0, volume.shape[1] - 1)
                        for k in (0, volume.shape[2] - 1)], float)
    world = volume.index_to_world(corners)
    lo, hi = world.min(axis=0), world.max(axis=0)
    spacing = (x_mm, float(in_plane), float(in_plane))
    shape = tuple(int(np.floor((h - lo_) / s + 1e-6)) + 1 for lo_, h, s in zip(lo, hi, spacing, strict=True))
    return Volume(np.zeros(shape, np.uint8), spacing, tuple(float(v) for v in lo))


def to_mri_grid(mri: Volume, grid: Volume) -> Volume:
    """``mri`` resampled onto ``grid`` (trilinear, 0 outside), smoothed first along every axis the grid is
    coarser than the input: along the slabs a box of the slab's width (a thin-slice 3D sequence becomes the thick
    slabs the model saw), in the plane a Gaussian of σ = 0.4 × the ratio of pixel sizes (anti-aliasing).

    Example:
        >>> mri = Volume(np.full((60, 60, 60), 300.0, np.float32), (1.0, 1.0, 1.0))
        >>> on = to_mri_grid(mri, mri_model_grid(mri, 1.25))
        >>> on.shape, round(float(on.array[8, 24, 24]))
        ((16, 48, 48), 300)
    """
    from scipy import ndimage

    from lumbarlab.volume import resample

    values = np.asarray(mri.array, np.float32)
    axis, _ = sagittal_axis(mri)
    ratio = np.array([max(grid.spacing[1:]) / s for s in mri.spacing])
    sigma = np.where(ratio > 1.25, 0.4 * ratio, 0.0)
    sigma[axis] = 0.0
    if np.any(sigma > 0):
        values = ndimage.gaussian_filter(values, sigma=sigma, mode="nearest")
    across = grid.spacing[0] / mri.spacing[axis]
    if across > 1.5:  # thin slices → slabs: the mean over the slab's width, a centred box with fractional ends
        k = int(np.ceil((across - 1.0) / 2.0))
        offsets = np.arange(-k, k + 1)
        weights = np.clip(across / 2.0 + 0.5 - np.abs(offsets), 0.0, 1.0)
        values = ndimage.convolve1d(values, weights / weights.sum(), axis=axis, mode="nearest")
    return resample(Volume(values, mri.spacing, mri.origin, mri.direction), grid.shape, grid.spacing, grid.origin,
                    grid.direction, order=1, cval=0.0)


def check_t2_contrast(image: np.ndarray, classes: np.ndarray, canal: int, vertebrae: tuple[int, ...]) -> dict:
    """The median signal of the canal (cerebrospinal fluid) and of the vertebrae (marrow) on a segmented stack,
    and their ratio; raises :class:`LumbarLabError` when the canal is the darker (a T1-weighted image: fluid is
    dark on T1 and bright on T2, marrow fat is bright on both — Westbrook, *MRI in Practice*, ch. 2) or when the
    network found no canal or no vertebra (the image is not a lumbar spine the model can read).

    Example:
        >>> img = np.repeat([900.0, 300.0, 0.0], 20); cls = np.repeat([3, 1, 0], 20)   # fluid, bone, air
        >>> check_t2_contrast(img, cls, canal=3, vertebrae=(1, 2))["csf_to_bone"]
        3.0
    """
    fluid, bone = classes == canal, np.isin(classes, vertebrae)
    if fluid.sum() < 10 or bone.sum() < 10:
        raise LumbarLabError("the model found no spinal canal or no vertebra in this image: it is not a sagittal "
                             "lumbar spine T2 it can read (another body part, plane or sequence?). Nothing was "
                             "written.")
    csf, marrow = float(np.median(image[fluid])), float(np.median(image[bone]))
    ratio = csf / max(marrow, 1e-6)
    if ratio < 1.0:
        raise LumbarLabError(f"the canal's fluid is darker than the vertebrae (median {csf:.0f} against {marrow:.0f}): "
                             "a T1-weighted image. mri-spine reads sagittal T2, where fluid is bright; choose the T2 "
                             "series. Nothing was written.")
    return {"csf_median": round(csf, 2), "marrow_median": round(marrow, 2), "csf_to_bone": round(ratio, 3)}


def is_spider_file(path) -> bool:
    """Whether ``path`` is named as SPIDER names its images (:data:`SPIDER_NAME`), e.g. ``12_t2.mha``."""
    return bool(SPIDER_NAME.match(Path(str(path)).name))


@dataclass
class StackSegmentation:
    """What :func:`segment_stack` returns, on the model's grid: the grid, the input resampled onto it, the
    normalised stack the network read, the class map after clean-up, the class probabilities, the label value of
    each class (:attr:`values`, class 1 first), the model's name and the T2 contrast check."""

    grid: Volume
    image: Volume
    stack: np.ndarray
    classes: np.ndarray
    probabilities: np.ndarray
    values: tuple[int, ...]
    model: str
    contrast: dict

    def class_of(self, value: int) -> int:
        """The class index of a label value (e.g. 123, the L4/L5 disc)."""
        return self.values.index(value) + 1


def segment_stack(mri: Volume, model: str = "mri-spine", device=None, folder=None) -> StackSegmentation:
    """Steps 1–4 of the module on a sagittal T2 ``mri``: check it, resample it onto the model's grid, segment it
    slab by slab with the clean-up, and check its T2 contrast. Raises :class:`LumbarLabError` for an input the model
    cannot read."""
    from lumbarlab.datasets.mri import normalize_mri
    from lumbarlab.infer import Predictor
    from lumbarlab.labels import CANAL_LABEL
    from lumbarlab.zoo import load, resolve
    from lumbarlab.zoo.tasks import segment_sagittal_stack

    recipe = resolve(model)
    if recipe.modality not in ("t1", "t2") or recipe.task != "segmentation" or recipe.spatial_dims != 2:
        raise LumbarLabError(f"{recipe.name} is a {recipe.spatial_dims}D {recipe.modality} {recipe.task} model; "
                             "an MRI stack needs the slice-wise MRI segmenter (mri-spine).")
    check_sagittal_mri(mri, recipe.modality.upper())
    grid = mri_model_grid(mri, float(recipe.spacing))
    on_grid = to_mri_grid(mri, grid)
    net = load(recipe.name, folder)
    predictor = Predictor(net, spatial_dims=2, in_channels=recipe.in_channels, output="probabilities",
                          roi_size=tuple(recipe.patch), device=device)
    values = tuple(recipe.classes)
    n_vert = sum(1 for c in values if c < 100)
    stack = normalize_mri(on_grid.array)
    clean, prob = segment_sagittal_stack(predictor, stack, grid, n_vert)
    contrast = check_t2_contrast(on_grid.array, clean, values.index(CANAL_LABEL) + 1, tuple(range(1, n_vert + 1)))
    return StackSegmentation(grid, on_grid, stack, clean, prob, values, recipe.name, contrast)


def segment_mri_volume(mri: Volume, model: str = "mri-spine", device=None, convention: str = "verse",
                       folder=None) -> SegmentResult:
    """Segment the vertebrae, discs and canal of a sagittal T2 ``mri`` (any orientation, pixel size and field of
    view) with zoo model ``model``: labels on the input's grid, and a report.

    Args:
        mri: the sagittal stack (thick slabs, or a thin-slice 3D sequence).
        model: a zoo 2D MRI segmentation model.
        device: where to run the network (default: :func:`lumbarlab.device.get_device`).
        convention: ``"verse"`` (lumbarlab: vertebrae 19–24 and sacrum 26, discs 119–124, canal 200) or
            ``"spider"`` (vertebrae from the bottom 1 = L5 …, discs 201 = L5/S1 …, canal 100, no sacrum).
        folder: a zoo folder other than the shipped weights.

    Raises:
        LumbarLabError: not a sagittal T2 MR (:func:`check_sagittal_mri`, :func:`check_t2_contrast`), or the model
            is not an MRI segmenter.

    Example:
        >>> from lumbarlab.datasets.mri_spine import phantom_mri_spine
        >>> from lumbarlab.volume import reorient
        >>> stack = reorient(phantom_mri_spine(1, seed=900_500)[0].image, "PIL")
        >>> result = segment_mri_volume(stack)
        >>> result.labels.shape == stack.shape, result.report["levels_found"][:3]
        (True, ['T12', 'L1', 'L2'])
    """
    import time

    from scipy import ndimage

    from lumbarlab.labels import CANAL_LABEL, LABEL_NAMES, verse_to_spider

    if convention not in ("verse", "spider"):
        raise LumbarLabError(f"label convention must be 'verse' or 'spider', got {convention!r}.")
    started = time.perf_counter()
    seg = segment_stack(mri, model, device=device, folder=folder)
    grid, clean, prob, classes = seg.grid, seg.classes, seg.probabilities, seg.values
    lut = np.zeros(len(classes) + 1, np.uint16)
    lut[1:] = classes
    on_model = grid.with_array(lut[clean])
    kept = ndimage.binary_dilation(clean > 0, iterations=1)
    foreground = np.where(kept, 1.0 - prob[0], 0.0).astype(np.float32)
    del prob
    labels = labels_to_grid(on_model, mri.with_array(np.zeros(mri.shape, np.uint8)), classes, foreground)
    present = [int(v) for v in np.unique(labels.array) if v]
    out = labels.array if convention == "verse" else verse_to_spider(labels.array)
    labels = Volume(out.astype(np.uint16), mri.spacing, mri.origin, mri.direction)
    report = {
        "model": seg.model, "input_shape": list(mri.shape), "input_spacing_mm": [round(s, 4) for s in mri.spacing],
        "model_grid_mm": list(grid.spacing), "label_convention": convention,
        "labels_found": [int(v) for v in np.unique(out) if v],
        "structures_found": [LABEL_NAMES.get(v, str(v)) for v in present],
        "levels_found": [LABEL_NAMES[v] for v in present if v < 100],
        "discs_found": [LABEL_NAMES[v] for v in present if 100 < v < CANAL_LABEL],
        "t2_contrast": seg.contrast,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return SegmentResult(labels, report)


def segment_mri_file(input_path, out, model: str = "mri-spine", report_path=None, device=None,
                     convention: str = "auto", folder=None) -> SegmentResult:
    """Read a sagittal MRI (SPIDER ``.mha``, NIfTI, NRRD or a DICOM series folder), segment it with
    :func:`segment_mri_volume`, and write the labels on the input's grid (and the JSON report when asked),
    atomically. ``convention="auto"``: SPIDER values for a file named as SPIDER names its images
    (:func:`is_spider_file`), lumbarlab's otherwise."""
    from lumbarlab.segment import segment_path

    if convention == "auto":
        convention = "spider" if is_spider_file(input_path) else "verse"
    return segment_path(input_path, out, report_path,
                        lambda mri: segment_mri_volume(mri, model, device=device, convention=convention, folder=folder))
