"""One 3D view function: NiiVue (ipyniivue) rendering a volume, optionally with labels.

ipyniivue ships its JavaScript in the wheel and renders offline in JupyterLab and Voilà;
itkwidgets does not (see DESIGN.md), so it is used only if a user has installed a working
one and asks for it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume

__all__ = ["view3d"]


def _cached_nifti(volume: Volume, tag: str) -> Path:
    from lumbarlab.io import write_image
    from lumbarlab.paths import cache_dir

    digest = hashlib.sha1(volume.array.tobytes()[:: max(volume.array.nbytes // 65536, 1)]).hexdigest()[:12]
    path = cache_dir() / "view3d" / f"{tag}-{digest}.nii.gz"
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
    from ipyniivue import NiiVue

    nv = NiiVue(height=height)
    items = [{"path": str(_cached_nifti(volume, "image")), "colormap": colormap}]
    if labels is not None:
        items.append({"path": str(_cached_nifti(labels, "labels")), "colormap": "random", "opacity": 0.5})
    nv.load_volumes(items)
    return nv
