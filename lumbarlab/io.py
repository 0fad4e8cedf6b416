"""Reading and writing images with their geometry, atomically.

Volumes are kept in RAS+ world coordinates (NIfTI's convention). ITK formats (MHA/MHD,
NRRD) store LPS+, so :func:`write_image` and :func:`read_image` flip the first two axes'
signs on the way. Every writer writes to a temporary file in the destination folder and
renames it into place, so an interrupted write never leaves a half-written file where a
good one was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume, to_canonical

__all__ = ["atomic_path", "write_image", "read_image", "write_png", "read_png", "RAS_TO_LPS", "to_canonical",
           "pixel_spacing", "display_image"]

#: RAS+ ↔ LPS+ (the same matrix both ways).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])

_NIFTI = (".nii", ".nii.gz")
_ITK = (".mha", ".mhd", ".nrrd", ".nhdr")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) and rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = _suffix(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_image(volume: Volume, path: str | os.PathLike, compress: bool = True, modality: str = "OT") -> Path:
    """Write a :class:`Volume` to ``path``, the format chosen by its suffix:

    * ``.nii.gz``/``.nii`` (NIfTI), ``.mha``/``.nrrd`` (ITK, one file) and ``.mhd`` (header + ``.raw``/``.zraw``);
    * ``.png``/``.jpg``: a one-slice volume as a picture (integer values 0–65535 as they are, floats in [0, 1]
      scaled to 8 bits; JPEG is lossy and 8-bit);
    * no suffix: a DICOM series folder, one file per slice (:func:`lumbarlab.dicom.write_dicom_series`;
      ``modality`` "CT"/"MR"), which :func:`read_image` reads back.

    Every format is written beside the destination and renamed into place.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix in _NIFTI:
        import nibabel as nib

        img = nib.Nifti1Image(np.asarray(volume.array), volume.affine)
        img.header.set_xyzt_units("mm")
        img.set_qform(volume.affine, code=1)
        img.set_sform(volume.affine, code=1)
        with atomic_path(path) as tmp:
            nib.save(img, str(tmp))
    elif suffix in _ITK:
        _write_itk(volume, path, compress)
    elif suffix in (".png", ".jpg", ".jpeg"):
        _write_picture(volume, path)
    elif suffix == "":
        from lumbarlab.dicom import write_dicom_series

        write_dicom_series(volume, path, modality=modality)
    else:
        raise LumbarLabError(f"cannot write {path.name}: use .nii.gz, .nii, .mha, .mhd, .nrrd, .png, .jpg, or a "
                             "folder name without a suffix for a DICOM series.")
    return path


def sitk_image(volume: Volume, array=None):
    """``volume`` as a SimpleITK image: ITK's LPS geometry and (k, j, i) array order; ``array`` (same shape) replaces
    the voxel values, e.g. a filled copy or a mask on the same grid."""
    import SimpleITK as sitk

    values = np.asarray(volume.array if array is None else array)
    img = sitk.GetImageFromArray(np.ascontiguousarray(values.transpose(2, 1, 0)))
    img.SetSpacing(tuple(float(s) for s in volume.spacing))
    img.SetOrigin(tuple(float(v) for v in RAS_TO_LPS @ np.asarray(volume.origin)))
    img.SetDirection(tuple(float(v) for v in (RAS_TO_LPS @ volume.direction).ravel()))
    return img


def _write_itk(volume: Volume, path: Path, compress: bool) -> None:
    import shutil

    import SimpleITK as sitk

    img = sitk_image(volume)
    if _suffix(path) != ".mhd":
        with atomic_path(path) as tmp:
            sitk.WriteImage(img, str(tmp), useCompression=compress)
        return
    # An .mhd names its data file, so both are written under their final names in a temporary folder, then
    # moved: the data file first, the header (what readers open) last.
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        sitk.WriteImage(img, str(work / path.name), useCompression=compress)
        for f in sorted(work.iterdir(), key=lambda f: f.suffix == ".mhd"):
            os.replace(f, path.parent / f.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_picture(volume: Volume, path: Path) -> None:
    from PIL import Image

    arr = np.asarray(volume.array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise LumbarLabError(f"{path.name}: a picture holds one slice; this volume has shape {arr.shape}.")
    arr = arr.T  # [column, row] → rows × columns
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)) and arr.min() >= 0 \
            and arr.max() > 1:
        arr = arr.astype(np.uint16 if arr.max() > 255 else np.uint8)  # integer values read from a picture
    if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1):
        raise LumbarLabError(f"{path.name}: a picture takes floats in [0, 1] or integers 0–65535; window and scale "
                             f"the image first (values here run {np.nanmin(arr):.4g} … {np.nanmax(arr):.4g}).")
    if _suffix(path) == ".png":
        write_png(arr, path, bits=16 if arr.dtype == np.uint16 else 8)
        return
    if arr.dtype.kind == "f":
        arr = np.round(np.clip(arr, 0.0, 1.0) * 255)
    elif arr.max() > 255 or arr.min() < 0:
        raise LumbarLabError(f"{path.name}: JPEG holds 8-bit values; write .png for 16-bit data.")
    with atomic_path(path) as tmp:
        Image.fromarray(arr.astype(np.uint8)).save(tmp, format="JPEG", quality=95)


def read_image(path: str | os.PathLike, canonical: bool = False,
               spacing: float | tuple[float, float] | None = None) -> Volume:
    """Read an image into a :class:`Volume` in RAS+ world coordinates.

    Formats: NIfTI (.nii, .nii.gz), MHA/MHD and NRRD (ITK), DICOM (a series folder, a multi-frame file or one
    file: a slice, or a projection radiograph such as CR/DX with its pixel spacing — see
    :func:`lumbarlab.dicom.read_dicom`), and PNG/JPEG (8 or 16 bit). A 2D image comes back as a one-slice volume
    indexed [column, row, 0] with an identity direction (it has no patient geometry); ``meta["spacing_known"]``
    says whether its pixel size in mm is known, and :func:`pixel_spacing` returns it or None.

    Args:
        path: a file, or a folder holding one DICOM series.
        canonical: reorient to the closest RAS+ axes (:func:`~lumbarlab.volume.to_canonical`).
        spacing: pixel size in mm, one value or (between rows, between columns), for a 2D image whose file
            does not state it (PNG/JPEG, or a DICOM radiograph without any spacing attribute). A spacing the
            DICOM file does state is never overridden.

    Raises:
        LumbarLabError: for a missing, corrupt, truncated or non-image file, naming it.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = write_png(np.eye(40), folder / "xray.png")
        >>> img = read_image(folder / "xray.png", spacing=0.15)
        >>> img.shape, img.spacing, pixel_spacing(img)
        ((40, 40, 1), (0.15, 0.15, 1.0), (0.15, 0.15))
        >>> pixel_spacing(read_image(folder / "xray.png")) is None  # lengths would be in pixels
        True
    """
    path = Path(path)
    if not path.exists():
        raise LumbarLabError(f"{path}: no such file or folder.")
    volume = _read_any(path)
    if spacing is not None:
        volume = _with_user_spacing(volume, spacing, path)
    return to_canonical(volume) if canonical else volume


def _with_user_spacing(volume: Volume, spacing: float | tuple[float, float], path: Path) -> Volume:
    sp = (float(spacing),) * 2 if np.isscalar(spacing) else tuple(float(s) for s in spacing)
    if len(sp) != 2 or not all(np.isfinite(s) and s > 0 for s in sp):
        raise LumbarLabError(f"spacing must be one or two positive pixel sizes in mm (row, column), got {spacing!r}.")
    if volume.meta.get("patient_geometry", True):
        raise LumbarLabError(f"{path.name}: spacing= is for 2D images without geometry (radiographs, pictures); "
                             "this image carries its own voxel spacing.")
    if volume.meta.get("spacing_known"):
        if np.allclose(sp, (volume.spacing[1], volume.spacing[0]), rtol=1e-3):
            return volume
        raise LumbarLabError(f"{path.name}: the file states a pixel spacing of {volume.spacing[1]:g} × "
                             f"{volume.spacing[0]:g} mm ({volume.meta.get('spacing_source')}); it is not overridden.")
    meta = {**volume.meta, "spacing_known": True, "spacing_source": "given by the user"}
    return Volume(volume.array, (sp[1], sp[0], volume.spacing[2]), volume.origin, volume.direction, meta)


def pixel_spacing(volume: Volume) -> tuple[float, float] | None:
    """(between rows, between columns) in mm of a 2D image read by :func:`read_image`, or None when the file
    did not state it and none was given — then lengths measured on it can only be given in pixels.

    Example:
        >>> pixel_spacing(Volume(np.zeros((3, 2, 1)), (0.2, 0.1, 1.0), meta={"spacing_known": True}))
        (0.1, 0.2)
    """
    if not volume.meta.get("spacing_known", True):
        return None
    return float(volume.spacing[1]), float(volume.spacing[0])


def display_image(volume: Volume, frame: int = 0) -> np.ndarray:
    """A 2D image as (rows, columns) grey levels in [0, 1] for display: a DICOM file's own VOI window or
    LUT when it has one (MONOCHROME1 shown as the file intends), else the 0.5–99.5 percentile range
    (:func:`lumbarlab.dicom.voi_display`). The volume's values are not changed.

    Example:
        >>> img = Volume(np.array([[[0.0], [10.0]], [[20.0], [30.0]]]), (1, 1, 1))
        >>> display_image(img).shape
        (2, 2)
    """
    from lumbarlab.dicom import voi_display

    if not 0 <= frame < volume.shape[2]:
        raise LumbarLabError(f"frame {frame} is outside the image's {volume.shape[2]} frame(s).")
    return voi_display(np.asarray(volume.array[:, :, frame]).T, volume.meta)


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _read_any(path: Path) -> Volume:
    if path.is_dir() or _suffix(path) in (".dcm", ".dicom") or _is_dicom_file(path):
        from lumbarlab.dicom import read_dicom

        return read_dicom(path)
    suffix = _suffix(path)
    if suffix in (".png", ".jpg", ".jpeg"):
        image = read_png(path).astype(np.float32)
        # a picture carries no geometry: identity direction, 1 mm until the user gives a spacing
        meta = {"projection": None, "patient_geometry": False, "spacing_known": False, "spacing_source": "none"}
        return Volume(image.T[:, :, None], (1.0, 1.0, 1.0), meta=meta)
    try:
        if suffix in _NIFTI:
            import nibabel as nib

            img = nib.load(str(path))
            aff = img.affine
            spacing = np.linalg.norm(aff[:3, :3], axis=0)
            data = np.asanyarray(img.dataobj)
            return Volume(data, tuple(spacing), tuple(aff[:3, 3]), aff[:3, :3] / spacing[None, :])
        if suffix in _ITK:
            import SimpleITK as sitk

            img = sitk.ReadImage(str(path))
            arr = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
            direction = RAS_TO_LPS @ np.array(img.GetDirection()).reshape(3, 3)
            origin = RAS_TO_LPS @ np.array(img.GetOrigin())
            return Volume(arr, img.GetSpacing(), tuple(origin), direction)
    except LumbarLabError:
        raise
    except Exception as exc:  # corrupt or truncated files come in many exception types
        raise LumbarLabError(f"{path}: cannot be read as an image ({exc.__class__.__name__}: {exc}).") from exc
    raise LumbarLabError(f"{path.name}: unknown image format; lumbarlab reads .nii(.gz), .mha, .mhd, .nrrd, DICOM, "
                         ".png and .jpg.")


def write_png(image: np.ndarray, path: str | os.PathLike, bits: int = 8) -> Path:
    """Write a 2D array as a grayscale PNG. Floats in [0, 1] are scaled to 8 or 16 bits (floats outside it are
    refused, as :func:`write_image` refuses them: window and scale first); integer arrays (label maps) are
    written as they are."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim != 2:
        raise LumbarLabError(f"a PNG needs a 2D array, got shape {arr.shape}.")
    if bits not in (8, 16):
        raise LumbarLabError(f"a PNG here holds 8 or 16 bits, got bits={bits}.")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or arr.min() < -1e-6 or arr.max() > 1 + 1e-6:
            raise LumbarLabError(f"a PNG takes floats in [0, 1]; window and scale the image first (values here run "
                                 f"{np.nanmin(arr):.4g} … {np.nanmax(arr):.4g}).")
        top = 255 if bits == 8 else 65535
        arr = np.round(np.clip(arr, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)
    elif arr.dtype != np.uint8 and arr.dtype != np.uint16:
        if arr.min() < 0 or arr.max() > 65535:
            raise LumbarLabError("integer PNGs hold values 0–65535.")
        arr = arr.astype(np.uint8 if arr.max() < 256 else np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return Path(path)


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG/JPEG into a 2D array (8- or 16-bit as stored; colour is converted to gray)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "I;16", "I"):
                img = img.convert("L")
            return np.array(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise LumbarLabError(f"{path}: not a readable image ({exc}).") from exc
