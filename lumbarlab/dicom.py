"""DICOM: series into volumes with their geometry, single radiographs, and de-identification.

Geometry follows DICOM PS3.3 C.7.6.2 (Image Plane): ``ImagePositionPatient`` is the centre of the
first transmitted pixel in LPS millimetres, ``ImageOrientationPatient`` holds the direction cosines of
a row and of a column, ``PixelSpacing`` is (between rows, between columns). A series is sorted by the
position of each slice along the plane's normal; lumbarlab's :class:`Volume` is indexed
``[column, row, slice]`` in RAS+ (NIfTI's convention, like the rest of the lab).

Stored values become modality values through ``RescaleSlope`` and ``RescaleIntercept`` or a Modality
LUT (PS3.3 C.11.1: HU for CT). ``MONOCHROME1`` images (low values shown bright) are inverted within their
bit range so that bone is bright, as in every other image lumbarlab hands to a model.

Projection radiographs (CR, DX, …) carry no slice geometry: they are read as one-slice volumes with the
pixel spacing the file states — ``PixelSpacing``, else ``ImagerPixelSpacing`` corrected by the estimated
magnification — and ``meta`` records which, or that there was none (lengths then stay in pixels).
Compressed transfer syntaxes decode through pydicom's plugins (pylibjpeg and its libjpeg, openjpeg and
rle decoders: JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE); the same decoder serves files
and uploaded bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume

__all__ = ["read_dicom", "read_dicom_bytes", "read_dicom_series", "read_dicom_image", "read_dicom_files", "scan_dicom",
           "split_stacks", "slice_plane", "DicomSeries", "write_dicom_series", "deidentify", "BASIC_PROFILE_REMOVE",
           "BASIC_PROFILE_UIDS", "dataset_to_volume", "modality_values", "voi_display", "projection_spacing",
           "stored_range", "PROJECTION_MODALITIES", "series_meta"]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def _read(path: Path, stop_before_pixels: bool = False):
    import pydicom

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels)
    except Exception as exc:  # pydicom raises many types for non-DICOM or truncated files
        raise LumbarLabError(f"{path}: not a readable DICOM file ({exc.__class__.__name__}: {exc}).") from exc


#: Modalities whose images are projections (no slice geometry): computed and digital radiography,
#: mammography, fluoroscopy, angiography, intra-oral and panoramic X-ray (PS3.3 C.7.3.1.1.1).
PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "IO", "PX", "RG", "DF"})

#: What to install when pydicom finds no decoder for a compressed transfer syntax.
_DECODERS = "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle (lumbarlab's dependencies)"


def _stored(ds, where: str) -> np.ndarray:
    """The stored pixel values as pydicom decodes them, with a message that names a missing decoder."""
    try:
        return ds.pixel_array
    except Exception as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", str(syntax or "an unknown transfer syntax"))
        text = str(exc)
        if "missing dependencies" in text or "no pixel data handler" in text.lower() or "plugins" in text:
            raise LumbarLabError(f"{where}: the pixel data is compressed as {name}, and no decoder for it is "
                                 f"installed here; {_DECODERS}.") from exc
        if "not supported" in text:
            raise LumbarLabError(f"{where}: pixel data in {name} cannot be decoded by pydicom; convert the file to an "
                                 "uncompressed or JPEG-family transfer syntax first (e.g. `gdcmconv --raw`).") from exc
        raise LumbarLabError(f"{where}: the pixel data cannot be decoded ({exc.__class__.__name__}: {exc}); "
                             f"the file may be truncated or damaged (transfer syntax: {name}).") from exc


def stored_range(ds) -> tuple[int, int]:
    """The smallest and largest value the stored pixels can hold, from BitsStored and
    PixelRepresentation (PS3.3 C.7.6.3.1): 0 … 2^b − 1 unsigned, −2^(b−1) … 2^(b−1) − 1 signed.

    Example:
        >>> from pydicom import Dataset
        >>> ds = Dataset(); ds.BitsStored, ds.PixelRepresentation = 12, 0
        >>> stored_range(ds)
        (0, 4095)
    """
    bits = int(getattr(ds, "BitsStored", 0) or getattr(ds, "BitsAllocated", 16) or 16)
    if int(getattr(ds, "PixelRepresentation", 0) or 0):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _modality_lut(ds, values: np.ndarray) -> np.ndarray:
    """Stored values → modality values: RescaleSlope/Intercept or a Modality LUT Sequence (PS3.3 C.11.1)."""
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(np.asarray(values), ds), dtype=np.float32)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    return np.asarray(values, dtype=np.float32) * np.float32(slope) + np.float32(intercept)


def _voi(ds) -> dict | None:
    """The first VOI window or VOI LUT of a dataset (PS3.3 C.11.2), in modality values, or None."""
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        item = ds.VOILUTSequence[0]
        n, first, bits = (int(v) for v in item.LUTDescriptor)
        data = np.asarray(item.LUTData, dtype=np.float64).ravel()
        return {"kind": "lut", "first": first, "bits": bits, "data": data[: n or 65536]}
    if "WindowCenter" in ds and "WindowWidth" in ds:
        def first(v):
            return float(v[0]) if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue" else float(v)

        function = str(getattr(ds, "VOILUTFunction", "LINEAR") or "LINEAR").upper()
        return {"kind": "window", "center": first(ds.WindowCenter), "width": first(ds.WindowWidth), "function": function}
    return None


def modality_values(ds, stored: np.ndarray) -> tuple[np.ndarray, dict]:
    """Stored pixels → float32 modality values (bone bright) and the facts a display needs.

    The Modality LUT or rescale is applied (HU for CT). ``MONOCHROME1`` images, which show low values
    bright, are inverted within the range the stored bits can hold (:func:`stored_range` through the
    modality LUT): the same formula for every file, independent of its content, so two radiographs of one
    detector stay comparable. Colour pixels (a secondary capture of a film) become grey with the ITU-R
    BT.601 luma weights. The full bit depth is kept; windowing is left to :func:`voi_display`.

    Returns:
        (values, meta) with meta keys ``photometric``, ``bits_stored``, ``voi`` (window or LUT, or None) and,
        for MONOCHROME1, ``inverted_range`` (lo, hi) so that ``original = lo + hi − value``.
    """
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").upper()
    arr = np.asarray(stored)
    meta: dict = {"photometric": photometric, "bits_stored": int(getattr(ds, "BitsStored", 0) or 0), "voi": _voi(ds)}
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) == 3:
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma
        meta["converted_from"] = photometric
        return (arr.astype(np.float32) @ weights).astype(np.float32), meta
    values = _modality_lut(ds, arr)
    if photometric == "MONOCHROME1":
        ends = _modality_lut(ds, np.array(stored_range(ds)))
        lo, hi = float(ends.min()), float(ends.max())
        values = np.float32(lo + hi) - values
        meta["inverted_range"] = (lo, hi)
    return values.astype(np.float32, copy=False), meta


def voi_display(values: np.ndarray, meta: dict | None = None) -> np.ndarray:
    """Values → grey levels in [0, 1] for display, as a DICOM viewer shows them (PS3.3 C.11.2.1.2):
    the file's first VOI window (LINEAR, LINEAR_EXACT or SIGMOID) or VOI LUT when it has one, else the
    0.5–99.5 percentile range; a MONOCHROME1 file is shown with low original values bright. The values
    themselves are never changed by this: models and measurements see the full bit depth.

    Args:
        values: modality values as :func:`modality_values` returns them (MONOCHROME1 already inverted).
        meta: its meta (``voi``, ``inverted_range``); None for the percentile window.

    Example:
        >>> v = np.array([0.0, 1000.0, 2000.0])
        >>> voi_display(v, {"voi": {"kind": "window", "center": 1000.0, "width": 1000.0, "function": "LINEAR_EXACT"}})
        array([0. , 0.5, 1. ], dtype=float32)
    """
    meta = meta or {}
    x = np.asarray(values, dtype=np.float64)
    inverted = meta.get("inverted_range")
    if inverted is not None:
        x = inverted[0] + inverted[1] - x  # back to the file's own values; the VOI is defined on them
    voi = meta.get("voi")
    if voi and voi["kind"] == "window" and voi["width"] > 0:
        c, w = voi["center"], voi["width"]
        if voi["function"] == "SIGMOID":
            y = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
        elif voi["function"] == "LINEAR_EXACT":
            y = (x - c) / w + 0.5
        else:  # LINEAR: the centre and width refer to discrete values, hence the 0.5 and the 1
            y = (x - (c - 0.5)) / max(w - 1.0, 1e-9) + 0.5
    elif voi and voi["kind"] == "lut":
        data = voi["data"]
        idx = np.clip(np.round(x - voi["first"]), 0, len(data) - 1).astype(np.int64)
        y = data[idx] / float(max(2 ** voi["bits"] - 1, 1))
    else:
        lo, hi = np.percentile(x, [0.5, 99.5]) if x.size else (0.0, 1.0)
        y = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    y = np.clip(y, 0.0, 1.0)
    if inverted is not None:
        y = 1.0 - y  # MONOCHROME1: the lowest value is shown white
    return y.astype(np.float32)


def projection_spacing(ds) -> tuple[tuple[float, float] | None, str]:
    """Pixel spacing (between rows, between columns) in mm of a projection image, and where it came from.

    In order (PS3.3 C.7.6.2.1.1 and C.8.11.4, "Pixel Spacing" vs "Imager Pixel Spacing"):
    ``PixelSpacing`` (calibrated to the patient, or as the modality states), then ``ImagerPixelSpacing``
    (at the detector) divided by ``EstimatedRadiographicMagnificationFactor`` when present, then
    ``NominalScannedPixelSpacing`` (digitised film); else None, and lengths can only be given in pixels.

    Example:
        >>> from pydicom import Dataset
        >>> ds = Dataset(); ds.ImagerPixelSpacing = [0.15, 0.15]; ds.EstimatedRadiographicMagnificationFactor = 1.2
        >>> spacing, source = projection_spacing(ds)
        >>> [round(s, 4) for s in spacing], source
        ([0.125, 0.125], 'ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor 1.2')
    """
    def pair(name):
        v = getattr(ds, name, None)
        if v is None or len(v) != 2:
            return None
        sp = (float(v[0]), float(v[1]))
        return sp if all(np.isfinite(s) and s > 0 for s in sp) else None

    if (sp := pair("PixelSpacing")) is not None:
        return sp, "PixelSpacing"
    if (sp := pair("ImagerPixelSpacing")) is not None:
        ermf = getattr(ds, "EstimatedRadiographicMagnificationFactor", None)
        if ermf is not None and float(ermf) > 0:
            f = float(ermf)
            return (sp[0] / f, sp[1] / f), f"ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor {f:g}"
        return sp, "ImagerPixelSpacing (detector plane, not corrected for magnification)"
    if (sp := pair("NominalScannedPixelSpacing")) is not None:
        return sp, "NominalScannedPixelSpacing"
    return None, "none"


def _has_slice_geometry(ds) -> bool:
    return all(name in ds for name in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"))


def _image_volume(ds, where: str) -> Volume:
    """An image without slice geometry (a projection radiograph, a secondary capture, a cine): one
    slice (or its frames along k) indexed [column, row, frame], identity direction, pixel spacing as
    :func:`projection_spacing` finds it (1 mm and ``spacing_known`` False when there is none)."""
    values, meta = modality_values(ds, _stored(ds, where))
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3 or (frames > 1 and values.shape[0] != frames):
        raise LumbarLabError(f"{where}: expected greyscale pixel data, got shape {values.shape}.")
    spacing, source = projection_spacing(ds)
    modality = str(getattr(ds, "Modality", "") or "").upper()
    meta.update({
        "modality": modality,
        "projection": modality in PROJECTION_MODALITIES or not _has_slice_geometry(ds) and modality not in ("CT", "MR"),
        "patient_geometry": False,
        "spacing_known": spacing is not None,
        "spacing_source": source,
        "view_position": str(getattr(ds, "ViewPosition", "") or ""),
    })
    row_mm, col_mm = spacing or (1.0, 1.0)
    return Volume(np.ascontiguousarray(values.transpose(2, 1, 0)), (col_mm, row_mm, 1.0), meta=meta)


def dataset_to_volume(ds, where: str = "DICOM") -> Volume:
    """One DICOM dataset → :class:`Volume`: an enhanced multi-frame object placed by its functional
    groups, a cross-sectional slice in patient RAS coordinates, or — for projection radiographs (CR, DX,
    …) and other images without slice geometry — the image with its pixel spacing (:func:`_image_volume`).

    ``meta`` says which: ``projection``, ``patient_geometry``, ``spacing_known`` and ``spacing_source``.
    """
    modality = str(getattr(ds, "Modality", "") or "").upper()
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if modality in PROJECTION_MODALITIES:
        return _image_volume(ds, where)
    if frames > 1 and "PerFrameFunctionalGroupsSequence" in ds:
        return _multiframe(ds, where)
    if frames == 1 and _has_slice_geometry(ds):
        pos, ori, sp = _frame_geometry(ds, Path(where))
        values, meta = modality_values(ds, _stored(ds, where))
        vol = _volume([values], [pos], ori, sp, where)
        vol.meta.update(meta, modality=modality, projection=False, patient_geometry=True, spacing_known=True,
                        spacing_source="PixelSpacing")
        return vol
    return _image_volume(ds, where)


def read_dicom_bytes(data: bytes, name: str = "upload") -> Volume:
    """DICOM bytes (an upload) → :class:`Volume`, through the same decoder as files
    (:func:`dataset_to_volume`): compressed syntaxes, MONOCHROME1, projection spacing."""
    import io

    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # truncated or not DICOM
        raise LumbarLabError(f"{name}: not a readable DICOM file ({exc.__class__.__name__}: {exc}).") from exc
    return dataset_to_volume(ds, name)


def read_dicom_image(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, float]]:
    """One 2D DICOM image (e.g. a radiograph) → ((rows, cols) float32 modality values, pixel spacing mm
    (between rows, between columns)). Spacing as :func:`projection_spacing` finds it, (1, 1) when the file
    has none; :func:`read_dicom` returns the same image with that provenance in ``meta``. A multi-frame
    file gives its first frame."""
    path = Path(path)
    vol = dataset_to_volume(_read(path), str(path))
    return np.ascontiguousarray(vol.array[:, :, 0].T), (vol.spacing[1], vol.spacing[0])


def _pixels(ds, path: Path) -> np.ndarray:
    """Modality values of one slice (bone bright), for series readers."""
    return modality_values(ds, _stored(ds, str(path)))[0]


def _frame_geometry(ds, path: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(position (3,), orientation (6,), pixel spacing) of a classic single-frame slice."""
    try:
        pos = np.array([float(v) for v in ds.ImagePositionPatient])
        ori = np.array([float(v) for v in ds.ImageOrientationPatient])
        sp = tuple(float(v) for v in ds.PixelSpacing)
    except AttributeError as exc:
        raise LumbarLabError(f"{path}: lacks ImagePositionPatient/ImageOrientationPatient/PixelSpacing, so it "
                             "cannot be placed in a series; read it alone with read_image (a radiograph or other "
                             "2D image) or re-export the complete series.") from exc
    return pos, ori, sp


def _volume(slices: list[np.ndarray], positions: list[np.ndarray], orientation: np.ndarray,
            pixel_spacing: tuple[float, float], where: str) -> Volume:
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    dist = np.array([float(p @ normal) for p in positions])
    order = np.argsort(dist)
    dist = dist[order]
    if len(slices) > 1:
        gaps = np.diff(dist)
        if np.any(gaps < 1e-3):
            raise LumbarLabError(f"{where}: two slices share a position ({dist[np.argmin(gaps)]:.2f} mm along the normal); "
                                 "the folder holds duplicate or mixed series.")
        step = float(np.median(gaps))
        bad = np.flatnonzero(np.abs(gaps - step) > 0.1 * step)
        if len(bad):
            i = int(bad[0])
            missing = int(round(gaps[i] / step)) - 1
            raise LumbarLabError(f"{where}: slice spacing is inconsistent between {dist[i]:.2f} and {dist[i + 1]:.2f} mm "
                                 f"(median {step:.2f} mm" + (f"; about {missing} slice(s) missing" if missing > 0 else "")
                                 + "). Re-export the complete series.")
    else:
        step = 1.0
    array = np.stack([slices[i] for i in order]).transpose(2, 1, 0)  # (slice, row, col) → (col, row, slice)
    direction_lps = np.stack([row_dir, col_dir, normal], axis=1)
    return Volume(array, (pixel_spacing[1], pixel_spacing[0], step), tuple(_LPS_TO_RAS @ positions[order[0]]),
                  _LPS_TO_RAS @ direction_lps)


def _multiframe(ds, path: Path | str) -> Volume:
    """An enhanced multi-frame object (per-frame positions in the functional groups)."""
    arr, meta = modality_values(ds, _stored(ds, str(path)))
    frames = int(getattr(ds, "NumberOfFrames", 1))
    if arr.ndim != 3 or arr.shape[0] != frames:
        raise LumbarLabError(f"{path}: {frames} frames announced, pixel data has shape {arr.shape}.")
    shared = getattr(ds, "SharedFunctionalGroupsSequence", [None])[0]
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if per_frame is None or len(per_frame) != frames:
        raise LumbarLabError(f"{path}: a multi-frame file without per-frame positions cannot be placed in space.")

    def group(frame, name):
        for source in (frame, shared):
            if source is not None and name in source:
                return source[name].value[0]
        raise LumbarLabError(f"{path}: missing {name} in the functional groups.")

    orientation = np.array([float(v) for v in group(per_frame[0], "PlaneOrientationSequence").ImageOrientationPatient])
    spacing = tuple(float(v) for v in group(per_frame[0], "PixelMeasuresSequence").PixelSpacing)
    positions = [np.array([float(v) for v in group(f, "PlanePositionSequence").ImagePositionPatient]) for f in per_frame]
    vol = _volume(list(arr), positions, orientation, spacing, str(path))
    vol.meta.update(series_meta(ds))
    vol.meta.update(meta, modality=str(getattr(ds, "Modality", "") or ""), projection=False, patient_geometry=True,
                    spacing_known=True, spacing_source="PixelSpacing")
    return vol


def read_dicom_series(folder: str | os.PathLike, series_uid: str | None = None) -> Volume:
    """All slices of one series in ``folder`` (any file names; non-DICOM files are skipped) → Volume.

    With several series in the folder, pass ``series_uid`` (the error lists them). Slices are sorted by
    position; duplicates, missing slices and mixed orientations or sizes raise LumbarLabError.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LumbarLabError(f"{folder}: not a folder of DICOM files.")
    found = scan_dicom(folder)
    if not found:
        raise LumbarLabError(f"{folder}: no DICOM images found.")
    uids = sorted(s.uid for s in found)
    if series_uid is None and len(found) > 1:
        raise LumbarLabError(f"{folder} holds {len(found)} series ({', '.join(uids)}); pass series_uid=… to choose one.")
    chosen = next((s for s in found if s.uid == (series_uid or found[0].uid)), None)
    if chosen is None:
        raise LumbarLabError(f"{folder}: no series {series_uid!r}; found {', '.join(uids)}.")
    files = [s.path for s in chosen.slices] + list(chosen.other_files)
    if len(files) == 1:
        ds = _read(files[0])
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            return _multiframe(ds, files[0])
    return read_dicom_files(files, str(folder))


def read_dicom_files(paths: list[Path], where: str = "") -> Volume:
    """Single-frame slices of one stack (same orientation, pixel spacing and size) → Volume, sorted by
    position along the normal; gaps, duplicates and mixed orientations raise LumbarLabError."""
    where = where or (str(Path(paths[0]).parent) if paths else "")
    if not paths:
        raise LumbarLabError(f"{where}: no DICOM slices given.")
    slices, positions, orientation, spacing, shape, first = [], [], None, None, None, None
    for path in paths:
        path = Path(path)
        ds = _read(path)
        pos, ori, sp = _frame_geometry(ds, path)
        if orientation is None:
            orientation, spacing = ori, sp
        elif not np.allclose(ori, orientation, atol=1e-4) or not np.allclose(sp, spacing, atol=1e-4):
            raise LumbarLabError(f"{path}: orientation or pixel spacing differs from the rest of the series.")
        pixels = _pixels(ds, path)
        if shape is None:
            shape = pixels.shape
        elif pixels.shape != shape:
            raise LumbarLabError(f"{path}: {pixels.shape} pixels where the series has {shape}.")
        slices.append(pixels)
        positions.append(pos)
        first = ds if first is None else first
    vol = _volume(slices, positions, orientation, spacing, where)
    vol.meta.update(series_meta(first))
    return vol


def series_meta(ds) -> dict:
    """What a series says about its acquisition, for the checks a model makes before it reads an image:
    ``modality`` (CT, MR, …), ``series_description``, and for MR ``echo_time_ms`` and ``repetition_time_ms``
    (what makes an image T1- or T2-weighted) — each only when the file holds it.

    Example:
        >>> from pydicom.dataset import Dataset
        >>> ds = Dataset(); ds.Modality, ds.SeriesDescription, ds.EchoTime = "MR", "SAG T2 TSE", 96
        >>> series_meta(ds)
        {'modality': 'MR', 'series_description': 'SAG T2 TSE', 'echo_time_ms': 96.0}
    """
    out: dict = {}
    for key, name, kind in (("modality", "Modality", str), ("series_description", "SeriesDescription", str),
                            ("echo_time_ms", "EchoTime", float), ("repetition_time_ms", "RepetitionTime", float)):
        value = getattr(ds, name, None)
        if value in (None, ""):
            continue
        try:
            out[key] = kind(value).strip() if kind is str else kind(value)
        except (TypeError, ValueError):  # a malformed value says nothing
            continue
    if "modality" in out:
        out["modality"] = out["modality"].upper()
    return out


def read_dicom(path: str | os.PathLike) -> Volume:
    """A DICOM folder (one series) or one file → Volume.

    A file may be a cross-sectional slice, an enhanced multi-frame object, or a projection radiograph
    (CR, DX, …) or other 2D image without slice geometry, which comes back as a one-slice volume indexed
    [column, row, 0] with its pixel spacing (:func:`dataset_to_volume`). Every transfer syntax with an
    installed decoder reads: uncompressed, RLE, JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000.

    Example:
        >>> import pydicom.data
        >>> vol = read_dicom(pydicom.data.get_testdata_file("CT_small.dcm"))
        >>> vol.shape, vol.meta["projection"]
        ((128, 128, 1), False)
    """
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path)
    return dataset_to_volume(_read(path), str(path))


# -- studies: many series, each possibly several stacks ----------------------------------------------
@dataclass(frozen=True)
class DicomSlice:
    """Header facts of one single-frame slice (no pixels read)."""

    path: Path
    position: tuple[float, float, float]  # ImagePositionPatient, LPS mm
    orientation: tuple[float, ...]  # ImageOrientationPatient (row cosines, column cosines)
    spacing: tuple[float, float]  # PixelSpacing (between rows, between columns), mm
    shape: tuple[int, int]  # (Rows, Columns)
    instance: int


@dataclass(frozen=True)
class DicomSeries:
    """One series of a study: its UID, number, description, modality, patient folder and slices."""

    uid: str
    number: int | None
    description: str
    modality: str
    image_type: tuple[str, ...]
    slices: tuple[DicomSlice, ...]
    other_files: tuple[Path, ...] = ()  # images without slice geometry (secondary captures, multi-frame)

    @property
    def localizer(self) -> bool:
        """A scout (ImageType LOCALIZER, or slices in several orientations of one or two slices each)."""
        if "LOCALIZER" in self.image_type or re.search(r"locali[sz]er|scout|survey", self.description, re.I):
            return True
        return len({s.orientation for s in self.slices}) == len(self.slices) > 1 and len(self.slices) <= 3


def scan_dicom(root: str | os.PathLike) -> list[DicomSeries]:
    """Every DICOM series under ``root`` (any file names, e.g. Siemens ``.IMA``; other files are skipped),
    grouped by SeriesInstanceUID and sorted by (series number, UID). Only headers are read."""
    root = Path(root)
    groups: dict[str, dict] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("._")):
        try:
            ds = _read(path, stop_before_pixels=True)
        except LumbarLabError:
            continue
        if not hasattr(ds, "Rows"):
            continue  # DICOMDIR, structured reports, presentation states
        uid = str(getattr(ds, "SeriesInstanceUID", "") or f"no-uid:{path.parent}")
        g = groups.setdefault(uid, {"ds": ds, "slices": [], "other": []})
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        try:
            if frames > 1:
                raise AttributeError
            g["slices"].append(DicomSlice(
                path, tuple(float(v) for v in ds.ImagePositionPatient),
                tuple(round(float(v), 4) for v in ds.ImageOrientationPatient),
                tuple(float(v) for v in ds.PixelSpacing), (int(ds.Rows), int(ds.Columns)),
                int(getattr(ds, "InstanceNumber", 0) or 0)))
        except (AttributeError, TypeError, ValueError):
            g["other"].append(path)
    series = []
    for uid, g in groups.items():
        ds = g["ds"]
        number = getattr(ds, "SeriesNumber", None)
        series.append(DicomSeries(
            uid, int(number) if number not in (None, "") else None, str(getattr(ds, "SeriesDescription", "") or ""),
            str(getattr(ds, "Modality", "") or ""), tuple(str(v).upper() for v in (getattr(ds, "ImageType", None) or ())),
            tuple(sorted(g["slices"], key=lambda s: (s.instance, str(s.path)))), tuple(g["other"])))
    return sorted(series, key=lambda s: (s.number is None, s.number or 0, s.uid))


def split_stacks(slices: list[DicomSlice] | tuple[DicomSlice, ...], tolerance: float = 0.1) -> list[list[DicomSlice]]:
    """Split a series into stacks a volume can hold: same orientation, pixel spacing and size, and an even
    step along the normal. A step more than ``tolerance`` (fraction) off the stack's first step starts a new
    stack — the blocks of axial slices angled to each lumbar disc (one block per disc, or one slice per
    disc at L5/S1 following the curve) become one stack each. Stacks are ordered along the normal."""
    groups: dict[tuple, list[DicomSlice]] = {}
    for s in slices:
        groups.setdefault((s.orientation, s.spacing, s.shape), []).append(s)
    stacks = []
    for (orientation, _, _), members in groups.items():
        normal = np.cross(np.array(orientation[:3]), np.array(orientation[3:]))
        members = sorted(members, key=lambda s: float(np.array(s.position) @ normal))
        current, step = [members[0]], None
        for prev, s in zip(members, members[1:], strict=False):
            gap = float((np.array(s.position) - np.array(prev.position)) @ normal)
            if gap > 1e-3 and (step is None or abs(gap - step) <= tolerance * step):
                step = step if step is not None else gap
                current.append(s)
            else:
                stacks.append(current)
                current, step = [s], None
        stacks.append(current)
    return stacks


def slice_plane(orientation: tuple[float, ...] | np.ndarray) -> str:
    """"sagittal", "coronal" or "axial": the patient axis (LPS x, y, z) closest to the slice normal."""
    o = np.asarray(orientation, dtype=float)
    normal = np.abs(np.cross(o[:3], o[3:]))
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


# -- writing ------------------------------------------------------------------------------------------------
_SOP_CLASSES = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def _stored_values(array: np.ndarray) -> tuple[np.ndarray, float, float, bool]:
    """(stored integers, RescaleSlope, RescaleIntercept, signed): integer-valued data within 16 bits is stored
    as it is (slope 1); anything else is mapped linearly onto 0–65535 (PS3.3 C.11.1.1.2 undoes it on reading)."""
    a = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise LumbarLabError("DICOM pixel data must be finite; replace NaN/inf first.")
    lo, hi = float(a.min()), float(a.max())
    if np.all(a == np.round(a)):
        if lo >= 0 and hi <= 65535:
            return a.astype(np.uint16), 1.0, 0.0, False
        if lo >= -32768 and hi <= 32767:
            return a.astype(np.int16), 1.0, 0.0, True
    slope = (hi - lo) / 65535.0 if hi > lo else 1.0
    return np.round((a - lo) / slope).astype(np.uint16), slope, lo, False


def write_dicom_series(volume: Volume, folder: str | os.PathLike, modality: str = "OT",
                       description: str = "lumbarlab") -> Path:
    """Write a :class:`Volume` as a DICOM series folder, one file per slice (``IM0001.dcm`` …), that
    :func:`read_dicom_series` reads back with the same values and geometry.

    Geometry per PS3.3 C.7.6.2 in LPS: ImageOrientationPatient from the volume's i and j directions,
    ImagePositionPatient per slice along k, PixelSpacing (between rows, between columns). Values are stored as
    16-bit integers with RescaleSlope/Intercept (:func:`_stored_values`). No patient data is written: the
    patient is ``ANONYMOUS`` and PatientIdentityRemoved is YES. ``modality`` "CT" or "MR" picks that image
    storage class; anything else writes secondary-capture objects. The folder is built beside the
    destination and renamed into place, so an interrupted write leaves no half-written series.
    """
    import shutil
    import tempfile

    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    array = np.asarray(volume.array)
    if array.ndim != 3:
        raise LumbarLabError(f"a DICOM series needs a 3D volume, got shape {array.shape}.")
    stored, slope, intercept, signed = _stored_values(array)
    direction_lps = _LPS_TO_RAS @ np.asarray(volume.direction, dtype=float)  # the same flip both ways
    origin_lps = _LPS_TO_RAS @ np.asarray(volume.origin, dtype=float)
    row_dir, col_dir, normal = direction_lps[:, 0], direction_lps[:, 1], direction_lps[:, 2]
    sop_class = _SOP_CLASSES.get(modality.upper(), _SECONDARY_CAPTURE)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for k in range(array.shape[2]):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = FileDataset(f"IM{k + 1:04d}.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.Modality, ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = modality.upper(), description, 1, k + 1
            ds.PatientName, ds.PatientID, ds.PatientIdentityRemoved = "ANONYMOUS", "lumbarlab", "YES"
            ds.ImageType = ["DERIVED", "SECONDARY"]
            ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
            ds.ImagePositionPatient = [float(v) for v in origin_lps + normal * volume.spacing[2] * k]
            ds.PixelSpacing = [float(volume.spacing[1]), float(volume.spacing[0])]
            ds.SliceThickness = float(volume.spacing[2])
            pixels = np.ascontiguousarray(stored[:, :, k].T)  # (column i, row j) → (rows, columns)
            ds.Rows, ds.Columns = pixels.shape
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, int(signed)
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", f"{intercept:.10g}"
            ds.PixelData = pixels.tobytes()
            pydicom.dcmwrite(str(work / f"IM{k + 1:04d}.dcm"), ds, enforce_file_format=True)
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{work.name[-8:]}")
            folder.rename(old)
        work.rename(folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return folder


# -- de-identification -------------------------------------------------------------------------------
#: Attributes the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile removes or empties
#: and that lumbarlab handles (patient, physician, institution, dates, free text).
BASIC_PROFILE_REMOVE = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientSex", "PatientAge",
    "PatientAddress", "PatientTelephoneNumbers", "OtherPatientIDs", "OtherPatientNames", "PatientMotherBirthName",
    "MilitaryRank", "EthnicGroup", "PatientComments", "AccessionNumber", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "NameOfPhysiciansReadingStudy", "RequestingPhysician", "StationName", "StudyDate", "SeriesDate",
    "AcquisitionDate", "ContentDate", "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime",
    "StudyID", "StudyDescription", "SeriesDescription", "DeviceSerialNumber", "ImageComments",
    "AdditionalPatientHistory", "RequestAttributesSequence",
)
#: UIDs replaced consistently (same input UID → same new UID), so series stay series.
BASIC_PROFILE_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
                      "MediaStorageSOPInstanceUID")


def _new_uid(old: str, salt: str) -> str:
    digest = int(hashlib.sha256(f"{salt}:{old}".encode()).hexdigest()[:30], 16)
    return f"2.25.{digest}"  # PS3.5 B.2: a UUID-derived UID under the 2.25 root


def deidentify(ds, salt: str = "lumbarlab", pseudonym: str = "ANONYMOUS"):
    """De-identify a pydicom Dataset in place (and return it) for the attributes of
    :data:`BASIC_PROFILE_REMOVE` and :data:`BASIC_PROFILE_UIDS`, following PS3.15 Annex E's Basic Profile:
    identifying attributes are removed (PatientName and PatientID are set to ``pseudonym``, since many
    tools require them), UIDs are replaced by salted hashes, private tags are removed, and
    PatientIdentityRemoved = YES with DeidentificationMethod recorded. Pixel data is not inspected:
    burnt-in annotations need a separate check."""
    for name in BASIC_PROFILE_REMOVE:
        if name in ds:
            delattr(ds, name)
    ds.PatientName = pseudonym
    ds.PatientID = hashlib.sha256(f"{salt}:id".encode()).hexdigest()[:16] if pseudonym == "ANONYMOUS" else pseudonym
    for name in BASIC_PROFILE_UIDS:
        if name in ds:
            setattr(ds, name, _new_uid(str(getattr(ds, name)), salt))
        if hasattr(ds, "file_meta") and name in ds.file_meta:
            setattr(ds.file_meta, name, _new_uid(str(getattr(ds.file_meta, name)), salt))
    ds.remove_private_tags()
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "lumbarlab: PS3.15 E basic profile subset"  # LO: at most 64 characters
    return ds
