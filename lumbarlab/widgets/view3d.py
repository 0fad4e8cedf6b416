"""One 3D view function: NiiVue (ipyniivue) rendering a volume, optionally with labels.

ipyniivue ships its JavaScript in the wheel and renders offline in JupyterLab and Voilà;
itkwidgets does not (see DESIGN.md), so it is used only if a user has installed a working
one and asks for it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume

__all__ = ["view3d", "cache_key"]


def cache_key(volume: Volume) -> str:
    """A digest of everything the written file holds — every voxel, its dtype and shape, and the geometry — so
    two volumes share a cached file only when NiiVue would show them the same (~20 ms for 20 MB)."""
    h = hashlib.sha1()
    array = np.ascontiguousarray(volume.array)
    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.asarray(volume.affine, dtype=np.float64).round(9).tobytes())
    h.update(memoryview(array).cast("B"))
    return h.hexdigest()[:16]


def _cached_nifti(volume: Volume, tag: str) -> Path:
    from lumbarlab.io import write_image
    from lumbarlab.paths import cache_dir

    path = cache_dir() / "view3d" / f"{tag}-{cache_key(volume)}.nii.gz"
    if not path.exists():
        write_image(volume, path)
    return path


def view3d(volume: Volume, labels: Volume | None = None, colormap: str = "gray",
           backend: str = "niivue", height: int = 420):
    """A 3D/multiplanar viewer widget of ``volume`` (and a label overlay).

    Args:
        volume: the image (any :class:`~lumbarlab.volume.Volume`).
        labels: optional label map on the same grid, drawn semi-transparent.
        colormap: NiiVue colour map of the image.
        backend: ``"niivue"`` (default) or ``"itkwidgets"`` (only if you installed it yourself).
    """
    if backend == "itkwidgets":
        try:
            from itkwidgets import view  # type: ignore[import-not-found]
        except ImportError as exc:
            raise LumbarLabError("itkwidgets is not installed; use backend='niivue'.") from exc
        return view(volume.array)
    if backend != "niivue":
        raise LumbarLabError(f"unknown 3D backend {backend!r}; use 'niivue'.")
    if labels is not None and (labels.shape != volume.shape or not np.allclose(labels.affine, volume.affine, atol=1e-3)):
        raise LumbarLabError(f"labels {labels.shape} are not on the image's grid {volume.shape}; resample them first "
                             "(lumbarlab.volume.resample, order=0).")
    from ipyniivue import NiiVue

    nv = NiiVue(height=height)
    items = [{"path": str(_cached_nifti(volume, "image")), "colormap": colormap}]
    if labels is not None:
        items.append({"path": str(_cached_nifti(labels, "labels")), "colormap": "random", "opacity": 0.5})
    nv.load_volumes(items)
    return nv
