"""Radiographs from uploaded bytes (PNG, JPEG, DICOM), checked before any model sees them.

Every failure a user can cause — not an image, an empty or huge file, a colour photo, a truncated
DICOM — raises :class:`LumbarLabError` with a message a dashboard can show as is.
"""

from __future__ import annotations

import io

import numpy as np

from lumbarlab.datasets.preprocess import fit_to_model  # the same fit the zoo's models were trained with
from lumbarlab.errors import LumbarLabError

__all__ = ["radiograph_from_bytes", "MAX_UPLOAD_BYTES", "fit_to_model", "first_upload", "error_html", "read_upload"]

#: Larger uploads are refused before decoding (a lateral radiograph is a few MB).
MAX_UPLOAD_BYTES = 40 * 2**20


def _is_dicom(data: bytes) -> bool:
    return len(data) > 132 and data[128:132] == b"DICM"


def _from_dicom(data: bytes, name: str) -> np.ndarray:
    """(rows, cols) modality values of an uploaded DICOM through the library's one decoder (compressed
    syntaxes, MONOCHROME1 inverted within its bit range); a multi-frame file gives its first frame."""
    from lumbarlab.dicom import read_dicom_bytes

    vol = read_dicom_bytes(data, name)
    return np.ascontiguousarray(vol.array[:, :, 0].T, dtype=np.float32)


def radiograph_from_bytes(data: bytes, name: str = "upload") -> np.ndarray:
    """Decode an uploaded radiograph into an (H, W) float32 image scaled to [0, 1] (bone bright).

    PNG and JPEG in 8 or 16 bits (colour images are converted to grey); DICOM through
    :func:`lumbarlab.dicom.read_dicom_bytes` (any installed transfer syntax, rescale, MONOCHROME1).
    """
    if not data:
        raise LumbarLabError(f"{name}: the file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise LumbarLabError(f"{name}: {len(data) / 2**20:.0f} MB is larger than the {MAX_UPLOAD_BYTES // 2**20} MB "
                             f"this dashboard accepts; downsample the image first.")
    if _is_dicom(data):
        pixels = _from_dicom(data, name)
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                    pixels = np.asarray(img, dtype=np.float32)
                else:
                    pixels = np.asarray(img.convert("L"), dtype=np.float32)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise LumbarLabError(f"{name}: not a PNG, JPEG or DICOM image ({exc.__class__.__name__}).") from exc
    if pixels.ndim != 2 or min(pixels.shape) < 32:
        raise LumbarLabError(f"{name}: the image is {pixels.shape}; a radiograph needs at least 32×32 pixels.")
    if not np.isfinite(pixels).all():
        raise LumbarLabError(f"{name}: the image holds NaN or infinite values.")
    lo, hi = np.percentile(pixels, [0.5, 99.5])
    if hi <= lo:
        raise LumbarLabError(f"{name}: the image is blank (one grey level).")
    return np.clip((pixels - lo) / (hi - lo), 0, 1).astype(np.float32)


def first_upload(change) -> tuple[str, bytes] | None:
    """(file name, bytes) of the first file in an ``ipywidgets.FileUpload`` value change, or None when
    the value was cleared. Accepts ipywidgets 8 (a tuple of dicts) and 7 (a dict of dicts)."""
    files = change["new"]
    if not files:
        return None
    item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
    if isinstance(item, dict):
        return str(item.get("name", "upload")), bytes(item["content"])
    return str(getattr(item, "name", "upload")), bytes(item.content)


def read_upload(change, size: int) -> tuple[str, np.ndarray] | None:
    """(file name, image decoded and fitted to ``size``²) of a FileUpload change, or None when cleared."""
    upload = first_upload(change)
    if upload is None:
        return None
    name, content = upload
    return name, fit_to_model(radiograph_from_bytes(content, name), size)


def error_html(css_class: str, exc: Exception) -> str:
    """The message line a panel shows for a user error (escaped; ``css_class`` for tests to find it)."""
    import html

    return f"<p class='{css_class}' style='color:#b00020'>{html.escape(str(exc))}</p>"
