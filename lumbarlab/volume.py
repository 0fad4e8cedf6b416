"""Arrays that carry their geometry: a 3D :class:`Volume` and a 2D :class:`Radiograph`, and the
geometry operations every reader and measurement shares: orientation codes, reorientation and
resampling onto another grid.

World coordinates are millimetres in the RAS+ convention used by NIfTI and nibabel:
+x towards the patient's Right, +y Anterior, +z Superior. A volume's array is indexed
``array[i, j, k]``; the world position of a voxel centre is
``origin + direction @ (spacing * (i, j, k))`` — the same as a NIfTI affine.

Orientation codes name, for each array axis in turn, the patient direction it runs *towards*
(nibabel's ``aff2axcodes`` convention): ``"RAS"`` is NIfTI's canonical order, ``"LPS"`` the DICOM/ITK
one, ``"PIR"`` a sagittal stack as VerSe stores some of its CTs (i runs posterior, j inferior,
k right).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = ["Volume", "Radiograph", "axcodes", "parse_orientation", "reorient", "to_canonical", "resample"]


@dataclass
class Volume:
    """A 3D image or label map with spacing (mm), origin (mm) and direction (RAS+).

    Args:
        array: data indexed ``[i, j, k]``.
        spacing: voxel size along i, j, k in mm.
        origin: world position (mm) of the centre of voxel (0, 0, 0).
        direction: 3x3 matrix whose columns are the world directions of i, j, k.
        meta: facts about the image that are not geometry, e.g. for a DICOM radiograph
            ``{"projection": True, "spacing_known": False, "spacing_source": "none", "window": ...}``
            (see :func:`lumbarlab.dicom.read_dicom`). Carried through :meth:`with_array` and
            reorientation; dropped by resampling, which makes a new image.

    Example:
        >>> v = Volume(np.zeros((4, 5, 6)), (0.7, 0.7, 2.5))
        >>> v.shape, v.spacing
        ((4, 5, 6), (0.7, 0.7, 2.5))
        >>> v.index_to_world([1, 0, 2]).tolist()
        [0.7, 0.0, 5.0]
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    meta: dict = field(default_factory=dict)

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

    def crop(self, box: tuple[slice, slice, slice]) -> Volume:
        """The sub-volume of index slices ``box`` (steps of 1), placed where it was in world mm.

        Example:
            >>> v = Volume(np.zeros((10, 10, 10)), (2.0, 2.0, 2.0))
            >>> c = v.crop((slice(2, 5), slice(0, 10), slice(9, 10)))
            >>> c.shape, c.origin
            ((3, 10, 1), (4.0, 0.0, 18.0))
        """
        box = tuple(slice(*s.indices(n)[:2]) for s, n in zip(box, self.shape, strict=True))
        start = np.array([s.start for s in box], dtype=float)
        return Volume(self.array[box], self.spacing, tuple(self.index_to_world(start)), self.direction.copy(),
                      dict(self.meta))

    def with_array(self, array: np.ndarray) -> Volume:
        """A new volume with the same geometry and another array of the same shape."""
        if array.shape != self.array.shape:
            raise LumbarLabError(f"shape {array.shape} does not match the volume's {self.array.shape}.")
        return Volume(array, self.spacing, self.origin, self.direction.copy(), dict(self.meta))


_CODES = (("R", "L"), ("A", "P"), ("S", "I"))


def axcodes(volume: Volume) -> str:
    """The orientation code of a volume: for each array axis, the patient direction (R/L, A/P, S/I)
    its direction cosine is closest to.

    Args:
        volume: any volume.

    Example:
        >>> axcodes(Volume(np.zeros((2, 2, 2)), (1, 1, 1), direction=np.diag([-1.0, -1.0, 1.0])))
        'LPS'
    """
    direction = np.asarray(volume.direction, dtype=float)
    codes = []
    for i in range(3):
        w = int(np.argmax(np.abs(direction[:, i])))
        codes.append(_CODES[w][0] if direction[w, i] > 0 else _CODES[w][1])
    return "".join(codes)


def parse_orientation(codes: str) -> list[tuple[int, int]]:
    """An axis order code → (world axis, sign) per array axis; LumbarLabError for a code that is not one.

    Example:
        >>> parse_orientation("PIR")
        [(1, -1), (2, -1), (0, 1)]
    """
    text = str(codes).strip().upper()
    out = []
    for c in text:
        for w, pair in enumerate(_CODES):
            if c in pair:
                out.append((w, 1 if c == pair[0] else -1))
    if len(text) != 3 or len(out) != 3 or sorted(w for w, _ in out) != [0, 1, 2]:
        raise LumbarLabError(f"orientation {codes!r} is not three letters naming each of R/L, A/P and S/I once "
                             "(e.g. 'RAS', 'LPS', 'PIR').")
    return out


def _permute_flip(volume: Volume, order: list[int], flips: list[bool]) -> Volume:
    """Array axes taken in ``order``, then the axes marked in ``flips`` reversed; world positions kept."""
    array = np.transpose(np.asarray(volume.array), order)
    direction = np.asarray(volume.direction, dtype=float)[:, order].copy()
    spacing = [volume.spacing[i] for i in order]
    origin = np.asarray(volume.origin, dtype=float)
    for a in range(3):
        if flips[a]:  # this axis runs backwards: reverse it and move the origin to its far end
            origin = origin + direction[:, a] * spacing[a] * (array.shape[a] - 1)
            direction[:, a] = -direction[:, a]
            array = np.flip(array, axis=a)
    return Volume(np.ascontiguousarray(array), tuple(spacing), tuple(origin), direction, dict(volume.meta))


def reorient(volume: Volume, codes: str = "RAS") -> Volume:
    """The same image with its array axes permuted and flipped to the orientation ``codes`` (e.g.
    ``"RAS"``, ``"LPS"``, ``"PIR"``). Voxel values and their world positions are unchanged; only the
    storage order moves, so nothing is interpolated.

    Args:
        volume: an axis-aligned (or mildly oblique) volume.
        codes: the target orientation code (:func:`axcodes`).

    Raises:
        LumbarLabError: for an invalid code, or axes too oblique to name.

    Example:
        >>> v = Volume(np.arange(24).reshape(2, 3, 4), (1.0, 2.0, 3.0))
        >>> p = reorient(v, "PIR")
        >>> axcodes(p), p.shape, p.spacing
        ('PIR', (3, 4, 2), (2.0, 3.0, 1.0))
        >>> bool(np.allclose(p.index_to_world([0, 0, 0]), v.index_to_world([0, 2, 3])))
        True
    """
    target = parse_orientation(codes)
    direction = np.asarray(volume.direction, dtype=float)
    world_of = [int(np.argmax(np.abs(direction[:, i]))) for i in range(3)]
    if sorted(world_of) != [0, 1, 2]:
        raise LumbarLabError("the image axes are too oblique to name an orientation; resample it instead "
                             "(lumbarlab.volume.resample).")
    order = [world_of.index(w) for w, _ in target]
    flips = [np.sign(direction[w, order[a]]) != sign for a, (w, sign) in enumerate(target)]
    return _permute_flip(volume, order, flips)


def to_canonical(volume: Volume) -> Volume:
    """The closest RAS+ orientation (i, j, k towards right, anterior, superior), as nibabel's
    ``as_closest_canonical``: :func:`reorient` to ``"RAS"``.

    Example:
        >>> v = Volume(np.zeros((2, 3, 4)), (1, 1, 1), direction=np.diag([-1.0, -1.0, 1.0]))
        >>> axcodes(to_canonical(v))
        'RAS'
    """
    try:
        return reorient(volume, "RAS")
    except LumbarLabError as exc:
        raise LumbarLabError("the image axes are too oblique to name a closest canonical orientation.") from exc


def resample(volume: Volume, shape: tuple[int, int, int], spacing: tuple[float, float, float],
             origin: tuple[float, float, float] = (0.0, 0.0, 0.0), direction: np.ndarray | None = None,
             order: int = 1, cval: float = 0.0, dtype=None) -> Volume:
    """``volume`` sampled on another grid (any orientation, spacing and origin, in world mm).

    Each output voxel centre is mapped to world mm and back into the input's index space, where the
    input is interpolated (``order`` 0: nearest neighbour, for label maps; 1: trilinear; 3: cubic
    spline). Points outside the input get ``cval``.

    Args:
        volume: the image to sample.
        shape, spacing, origin, direction: the output grid, as :class:`Volume` holds one.
        order: interpolation order (0, 1 or 3).
        cval: value outside the input.
        dtype: output dtype (default: the input's for ``order=0``, float32 otherwise).

    Example:
        >>> v = Volume(np.arange(8.0).reshape(2, 2, 2), (2.0, 2.0, 2.0))
        >>> fine = resample(v, (3, 3, 3), (1.0, 1.0, 1.0))
        >>> float(fine.array[1, 1, 1])  # the centre of the 2 mm cube: the mean of its eight corners
        3.5
    """
    from scipy import ndimage

    if order not in (0, 1, 3):
        raise LumbarLabError(f"order must be 0, 1 or 3, got {order}.")
    shape = tuple(int(n) for n in shape)
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=float).reshape(3, 3)
    out = Volume(np.zeros((1, 1, 1), np.uint8), spacing, origin, direction)  # validates the grid
    m_in = volume.direction * np.asarray(volume.spacing)[None, :]
    m_out = out.direction * np.asarray(out.spacing)[None, :]
    inv = np.linalg.inv(m_in)
    matrix = inv @ m_out
    offset = inv @ (np.asarray(out.origin) - np.asarray(volume.origin))
    src = np.asarray(volume.array)
    if dtype is None:
        dtype = src.dtype if order == 0 else np.float32
    if order > 0 and src.dtype.kind not in "f":
        src = src.astype(np.float32)
    result = ndimage.affine_transform(src, matrix, offset, output_shape=shape, order=order, cval=cval,
                                      mode="constant", prefilter=order > 1, output=np.dtype(dtype))
    return Volume(result, out.spacing, out.origin, out.direction)


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
