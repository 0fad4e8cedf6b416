"""Arrays that carry their geometry: a 3D :class:`Volume` and a 2D :class:`Radiograph`.

World coordinates are millimetres in the RAS+ convention used by NIfTI and nibabel:
+x towards the patient's Right, +y Anterior, +z Superior. A volume's array is indexed
``array[i, j, k]``; the world position of a voxel centre is
``origin + direction @ (spacing * (i, j, k))`` — the same as a NIfTI affine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = ["Volume", "Radiograph"]


@dataclass
class Volume:
    """A 3D image or label map with spacing (mm), origin (mm) and direction (RAS+).

    Args:
        array: data indexed ``[i, j, k]``.
        spacing: voxel size along i, j, k in mm.
        origin: world position (mm) of the centre of voxel (0, 0, 0).
        direction: 3x3 matrix whose columns are the world directions of i, j, k.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise LumbarLabError(f"a Volume needs a 3D array, got shape {self.array.shape}.")
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        if any(not np.isfinite(s) or s <= 0 for s in self.spacing):
            raise LumbarLabError(f"voxel spacing must be positive millimetres, got {self.spacing}.")
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def affine(self) -> np.ndarray:
        """The 4x4 voxel-index → world-mm (RAS+) matrix, as nibabel uses it."""
        aff = np.eye(4)
        aff[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        aff[:3, 3] = self.origin
        return aff

    def index_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """Map voxel indices ``(..., 3)`` to world mm ``(..., 3)``."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ (self.direction * np.asarray(self.spacing)[None, :]).T + np.asarray(self.origin)

    def world_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Map world mm ``(..., 3)`` to (fractional) voxel indices ``(..., 3)``."""
        xyz = np.asarray(xyz, dtype=float)
        inv = np.linalg.inv(self.direction * np.asarray(self.spacing)[None, :])
        return (xyz - np.asarray(self.origin)) @ inv.T

    def with_array(self, array: np.ndarray) -> Volume:
        """A new volume with the same geometry and another array of the same shape."""
        if array.shape != self.array.shape:
            raise LumbarLabError(f"shape {array.shape} does not match the volume's {self.array.shape}.")
        return Volume(array, self.spacing, self.origin, self.direction.copy())


@dataclass
class Radiograph:
    """A 2D projection image, displayed as ``image[row, col]`` with row 0 at the top.

    Args:
        image: float array, higher = more attenuation (bone bright), in [0, 1] after display windowing.
        spacing: pixel size (row_mm, col_mm).
        view: ``"lateral"`` (anterior on the viewer's left) or ``"ap"`` (patient's right on the
            viewer's left, the radiological convention).
        labels: optional label image in the same grid (VerSe values): per pixel the vertebra with
            the longest bone path.
        body_labels: the same for vertebral bodies only (no posterior elements) — the masks that
            body-corner landmarks and X-ray body segmentations describe.
        corners: level name → (4, 2) array of (x=col, y=row) pixel positions, ordered
            superior-first, superior-second, inferior-second, inferior-first, where "first" is
            anterior (lateral view) or the image-left side (AP view).
    """

    image: np.ndarray
    spacing: tuple[float, float]
    view: str
    labels: np.ndarray | None = None
    corners: dict[str, np.ndarray] = field(default_factory=dict)
    truth: dict = field(default_factory=dict)
    body_labels: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.image.shape)  # type: ignore[return-value]
