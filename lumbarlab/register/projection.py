"""2D/3D registration: the pose of a CT found from one radiograph, through a differentiable digitally reconstructed
radiograph (DRR).

* :class:`ConeGeometry` — a point source, an isocentre and a flat detector (lateral or AP), as
  :class:`lumbarlab.phantom.radiography.XrayGeometry` describes a clinical radiograph; detector positions are kept at
  the isocentre plane's scale (mm on a ruler calibrated at the isocentre): anatomical millimetres for anatomy in that
  plane only, since anything nearer the source is magnified more and anything nearer the detector less.
* :class:`Pose` — a rigid motion of the CT: three rotations (degrees, about a centre) and three translations (mm).
* :func:`drr` — line integrals of attenuation along every detector ray through the posed CT by **trilinear ray
  marching**: samples at even depth steps, interpolated with ``torch.nn.functional.grid_sample`` and summed times the
  path per step (an interpolating projector in the family of Joseph, IEEE TMI 1982; Siddon, Med. Phys. 1985, is the
  exact alternative, which sums each voxel's value times the ray's length inside it). Differentiable with respect to
  the pose (DiffDRR, Gopalakrishnan & Golland, "Fast auto-differentiable digitally reconstructed radiographs",
  MICCAI workshop 2022).
* :func:`estimate_pose` — gradient descent (Adam) on the gradient correlation between the DRR and the radiograph,
  coarse to fine (Penney et al., IEEE TMI 1998 compared the similarity measures; gradient correlation was among the
  most accurate and robust).
* :func:`projected_tre` — the **reprojection distance** of landmarks at the isocentre plane: how far apart a
  landmark's images lie on the detector under the estimated and the true pose (its mean is the mRPD). A 2D error.
* :func:`projection_distance` — the **projection distance** of van de Kraats et al. (IEEE TMI 2005): the 3D distance
  of the registered landmark from the ray through the true one (its mean is their mPD).

World coordinates are RAS+ millimetres (:mod:`lumbarlab.volume`). A :class:`Pose` maps CT world points to where they
lie during the radiograph: ``y = R (x − c) + c + t``.

Example:
    >>> import numpy as np
    >>> from lumbarlab.volume import Volume
    >>> hu = np.full((24, 24, 24), -1000.0, np.float32); hu[8:16, 8:16, 8:16] = 0.0   # 16 mm of water in air
    >>> ct = Volume(hu, (2.0, 2.0, 2.0), origin=(-23.0, -23.0, -23.0))
    >>> geo = ConeGeometry("lateral", shape=(9, 9), pixel_mm=2.0)
    >>> image = drr(ct, Pose.identity(), geo)
    >>> round(float(image[4, 4]) / 0.0206, 1)   # the central ray crosses 16 mm of water (μ = 0.0206 /mm)
    16.0
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.phantom.render import hu_to_mu
from lumbarlab.register.points import rotation_xyz
from lumbarlab.volume import Radiograph, Volume

__all__ = [
    "ConeGeometry", "Pose", "AttenuationVolume", "prepare_ct", "pose_matrix", "drr", "gradient_correlation",
    "simulate_radiograph", "estimate_pose", "PoseResult", "projected_tre", "projection_distance", "bin_image",
]

_VIEWS = {  # towards the source, along the detector's columns (col 0 first), along its rows (row 0 = superior)
    "lateral": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0)),  # source on the patient's right, anterior left
    "ap": ((0.0, 1.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),       # source in front, the patient's right left
}


@dataclass(frozen=True)
class ConeGeometry:
    """A radiograph's geometry: a point source ``sod`` mm from the isocentre, a flat detector ``oid`` mm beyond it.

    Detector pixels are described at the **isocentre plane's scale**: ``pixel_mm`` is the pixel size a ruler
    calibrated at the isocentre shows (the physical detector pixel is ``pixel_mm × magnification``). Rows run superior →
    inferior; columns run anterior → posterior (``"lateral"``: beam along the patient's right–left x axis, source on
    the right) or patient's right → left (``"ap"``: beam along y, source in front), as
    :class:`lumbarlab.volume.Radiograph` displays them.

    Args:
        view: ``"lateral"`` or ``"ap"``.
        sod: source–isocentre distance, mm (the phantom draws 750–1000 mm).
        oid: isocentre–detector distance, mm (the phantom draws 150–250 mm).
        shape: detector (rows, cols).
        pixel_mm: pixel size at the isocentre plane, mm.
        isocentre: world position (mm, RAS+) of the point the central ray passes through.
        offset: (row, col) shift in mm of the detector's centre from the central ray, at the isocentre scale.

    Example:
        >>> g = ConeGeometry("lateral", sod=900.0, oid=200.0, shape=(5, 5), pixel_mm=1.0)
        >>> round(g.magnification, 4)   # a point at the isocentre reaches the detector magnified (sod + oid) / sod
        1.2222
        >>> g.project([[50.0, 10.0, 0.0]]).round(3).tolist()   # 50 mm towards the source: magnified 900 / 850
        [[-8.588, 2.0]]
    """

    view: str = "lateral"
    sod: float = 900.0
    oid: float = 200.0
    shape: tuple[int, int] = (96, 48)
    pixel_mm: float = 2.0
    isocentre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.view not in _VIEWS:
            raise LumbarLabError(f"view must be 'lateral' or 'ap', got {self.view!r}.")
        if not (self.sod > 0 and self.oid >= 0 and self.pixel_mm > 0):
            raise LumbarLabError(f"sod and pixel_mm must be positive and oid not negative (mm), got sod={self.sod}, "
                                 f"oid={self.oid}, pixel_mm={self.pixel_mm}.")
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise LumbarLabError(f"shape must be (rows, cols) of at least one pixel, got {self.shape}.")
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        object.__setattr__(self, "isocentre", tuple(float(v) for v in self.isocentre))
        object.__setattr__(self, "offset", tuple(float(v) for v in self.offset))

    @property
    def magnification(self) -> float:
        """Detector size over isocentre size of anything at the isocentre plane: (sod + oid) / sod."""
        return (self.sod + self.oid) / self.sod

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit vectors (towards the source, along the columns, along the rows) in world RAS+."""
        return tuple(np.asarray(v, float) for v in _VIEWS[self.view])  # type: ignore[return-value]

    @property
    def source(self) -> np.ndarray:
        """The source's world position, mm."""
        return np.asarray(self.isocentre) + self.sod * self.axes()[0]

    def pixel_points(self) -> np.ndarray:
        """World positions (mm) where each pixel's ray crosses the isocentre plane, ``(rows, cols, 3)``."""
        _, col_dir, row_dir = self.axes()
        rows, cols = self.shape
        r = self.offset[0] + (np.arange(rows) - (rows - 1) / 2) * self.pixel_mm
        c = self.offset[1] + (np.arange(cols) - (cols - 1) / 2) * self.pixel_mm
        return np.asarray(self.isocentre) + r[:, None, None] * row_dir + c[None, :, None] * col_dir

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every pixel's ray: the source (3,) and unit directions ``(rows, cols, 3)`` from it through the pixel."""
        d = self.pixel_points() - self.source
        return self.source, d / np.linalg.norm(d, axis=-1, keepdims=True)

    def project(self, points) -> np.ndarray:
        """Where world points (N, 3) mm appear on the detector: (x along the columns, y down the rows) in mm at the
        isocentre scale, from the centre of pixel (0, 0) — divide by ``pixel_mm`` for pixel positions.

        Raises:
            LumbarLabError: points not (N, 3), or at or behind the source.
        """
        p = np.asarray(points, float)
        if p.ndim != 2 or p.shape[1] != 3:
            raise LumbarLabError(f"points must be (N, 3) world mm, got shape {p.shape}.")
        towards, col_dir, row_dir = self.axes()
        depth = (p - np.asarray(self.isocentre)) @ towards
        if np.any(depth >= self.sod):
            raise LumbarLabError("a point lies at or behind the X-ray source; check the geometry's isocentre and sod.")
        q = (p - self.source) * (self.sod / (self.sod - depth))[:, None] + self.source - np.asarray(self.isocentre)
        rows, cols = self.shape
        x = q @ col_dir - self.offset[1] + (cols - 1) / 2 * self.pixel_mm
        y = q @ row_dir - self.offset[0] + (rows - 1) / 2 * self.pixel_mm
        return np.stack([x, y], axis=1)

    def binned(self, factor: int) -> ConeGeometry:
        """The detector read out in ``factor × factor`` bins (rows and columns that do not fill a bin dropped), the
        geometry of ``image[:rows // f * f, :cols // f * f]`` averaged in blocks.

        Example:
            >>> g = ConeGeometry(shape=(9, 6), pixel_mm=1.0).binned(2)
            >>> g.shape, g.pixel_mm, g.offset
            ((4, 3), 2.0, (-0.5, 0.0))
        """
        f = int(factor)
        if f < 1 or f > min(self.shape):
            raise LumbarLabError(f"a bin factor must be between 1 and the detector's size {self.shape}, got {factor}.")
        rows, cols = self.shape[0] // f, self.shape[1] // f
        off = (self.offset[0] + (f * rows - self.shape[0]) / 2 * self.pixel_mm,
               self.offset[1] + (f * cols - self.shape[1]) / 2 * self.pixel_mm)
        return replace(self, shape=(rows, cols), pixel_mm=self.pixel_mm * f, offset=off)


def pose_matrix(rotation_deg, translation_mm, centre=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """The 4 × 4 rigid matrix ``y = R (x − c) + c + t`` from three angles (degrees, about x then y then z:
    R = Rz Ry Rx) and a translation (mm), differentiable with respect to both (torch tensors keep their graph).

    Args:
        rotation_deg: (3,) degrees; translation_mm: (3,) mm; centre: (3,) mm, the point the rotations turn about.

    Example:
        >>> m = pose_matrix(torch.tensor([0.0, 0.0, 90.0]), torch.tensor([1.0, 0.0, 0.0]))
        >>> (m[:3, :3] @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64) + m[:3, 3]).round(decimals=6).tolist()
        [1.0, 1.0, 0.0]
    """
    rot = torch.as_tensor(rotation_deg, dtype=torch.float64)
    trans = torch.as_tensor(translation_mm, dtype=torch.float64)
    c = torch.as_tensor(np.asarray(centre, float), dtype=torch.float64, device=rot.device)
    r = rotation_xyz(rot * (math.pi / 180.0))
    bottom = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64, device=rot.device)
    return torch.cat([torch.cat([r, (c - r @ c + trans)[:, None]], dim=1), bottom])


@dataclass(frozen=True)
class Pose:
    """A rigid motion of the CT: rotations (degrees, about x then y then z, R = Rz Ry Rx) about ``centre`` and a
    translation (mm). It maps a CT world point ``x`` to ``R (x − centre) + centre + translation``. Put the centre at
    the CT's centre (``prepare_ct(ct).centre``) or among the anatomy of interest: rotations about a far-away point
    move everything, and then rotations and translations are hard to tell apart.

    Example:
        >>> p = Pose((0.0, 0.0, 90.0), (0.0, 0.0, 5.0), centre=(10.0, 0.0, 0.0))
        >>> p.apply([[11.0, 0.0, 0.0]]).round(6).tolist()
        [[10.0, 1.0, 5.0]]
        >>> q = Pose.from_matrix(p.matrix(), p.centre)
        >>> np.allclose(q.rotation_deg, p.rotation_deg) and np.allclose(q.translation_mm, p.translation_mm)
        True
    """

    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    translation_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("rotation_deg", "translation_mm", "centre"):
            value = np.asarray(getattr(self, name), float).ravel()
            if value.shape != (3,) or not np.all(np.isfinite(value)):
                raise LumbarLabError(f"Pose.{name} must be three finite numbers, got {getattr(self, name)!r}.")
            object.__setattr__(self, name, tuple(float(v) for v in value))

    @classmethod
    def identity(cls, centre=(0.0, 0.0, 0.0)) -> Pose:
        """No motion (rotations about ``centre``)."""
        return cls(centre=centre)

    @classmethod
    def from_matrix(cls, matrix, centre=(0.0, 0.0, 0.0)) -> Pose:
        """The pose of a 4 × 4 rigid matrix, with its rotations about ``centre``."""
        m = np.asarray(matrix, float)
        r = m[:3, :3]
        ry = math.asin(float(np.clip(-r[2, 0], -1.0, 1.0)))
        rx, rz = math.atan2(r[2, 1], r[2, 2]), math.atan2(r[1, 0], r[0, 0])
        c = np.asarray(centre, float)
        t = m[:3, 3] - c + r @ c
        return cls(tuple(np.degrees([rx, ry, rz])), tuple(t), tuple(c))

    def matrix(self) -> np.ndarray:
        """The 4 × 4 matrix mapping CT world points (homogeneous, mm) to posed world points."""
        return pose_matrix(self.rotation_deg, self.translation_mm, self.centre).numpy()

    def apply(self, points) -> np.ndarray:
        """Posed world positions of CT world points (N, 3) mm."""
        m = self.matrix()
        return np.asarray(points, float) @ m[:3, :3].T + m[:3, 3]

    def perturbed(self, translation_mm: float, rotation_deg: float, rng: np.random.Generator) -> Pose:
        """This pose followed by a rotation of ``rotation_deg`` about a random axis through the posed centre and a
        translation of ``translation_mm`` in a random direction: the start of a registration trial
        (van de Kraats et al. 2005 draw starting positions the same way, by their distance from the truth)."""
        axis, direction = rng.normal(size=3), rng.normal(size=3)
        axis, direction = axis / np.linalg.norm(axis), direction / np.linalg.norm(direction)
        a = math.radians(rotation_deg)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        turn = np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k   # Rodrigues
        m = self.matrix()
        out = np.eye(4)
        out[:3, :3] = turn @ m[:3, :3]
        posed_centre = np.asarray(self.centre) + np.asarray(self.translation_mm)
        out[:3, 3] = posed_centre + translation_mm * direction - out[:3, :3] @ np.asarray(self.centre)
        return Pose.from_matrix(out, self.centre)


@dataclass
class AttenuationVolume:
    """A CT ready for :func:`drr`: linear attenuation μ (/mm) as a ``(1, 1, I, J, K)`` tensor on a device and the
    world geometry of its voxels (made by :func:`prepare_ct`)."""

    mu: torch.Tensor
    affine: np.ndarray
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    meta: dict = field(default_factory=dict)

    @property
    def centre(self) -> np.ndarray:
        """World position (mm) of the volume's centre."""
        return (self.affine @ np.r_[(np.asarray(self.shape, float) - 1) / 2, 1.0])[:3]

    def corners(self) -> np.ndarray:
        """World positions (mm) of the eight corner voxel centres, (8, 3)."""
        n = np.asarray(self.shape, float) - 1
        ijk = np.array([[i, j, k, 1.0] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])])
        return (ijk @ self.affine.T)[:, :3]


def prepare_ct(ct: Volume | AttenuationVolume, device: str | torch.device | None = None,
               blur_mm: float = 0.0) -> AttenuationVolume:
    """A CT in HU → linear attenuation μ = μ_water (1 + HU / 1000), clipped at 0 for air (as
    :func:`lumbarlab.phantom.render.hu_to_mu`), on ``device``, optionally blurred by a Gaussian of ``blur_mm``
    (the pre-filter that coarse detector pixels need against aliasing).

    Args:
        ct: a :class:`lumbarlab.volume.Volume` in HU (any orientation and spacing), or an already prepared volume
            (returned as is when ``blur_mm`` is 0 and the device matches).
        device: torch device (default: the prepared volume's, else CPU).
        blur_mm: Gaussian σ in mm (0: none).

    Raises:
        LumbarLabError: not a 3D CT volume, or one with non-finite values.

    Example:
        >>> v = prepare_ct(Volume(np.zeros((3, 4, 5), np.float32), (1.0, 1.0, 2.0)))
        >>> tuple(v.mu.shape), round(float(v.mu.max()), 4), v.centre.tolist()
        ((1, 1, 3, 4, 5), 0.0206, [1.0, 1.5, 4.0])
    """
    if isinstance(ct, AttenuationVolume):
        dev = torch.device(device) if device is not None else ct.mu.device
        if blur_mm <= 0:
            return ct if dev == ct.mu.device else replace(ct, mu=ct.mu.to(dev))
        mu = ct.mu[0, 0].cpu().numpy()
        return _attenuation(mu, ct.affine, ct.spacing, dev, blur_mm)
    if not isinstance(ct, Volume):
        array = np.asarray(ct) if not isinstance(ct, torch.Tensor) else None
        shape = None if array is None else array.shape
        raise LumbarLabError(f"a DRR needs a 3D CT as a lumbarlab Volume (HU with its spacing and origin), got "
                             f"{type(ct).__name__}{'' if shape is None else f' of shape {shape}'}; wrap an array as "
                             "Volume(array, spacing, origin).")
    hu = np.asarray(ct.array, np.float32)
    if not np.all(np.isfinite(hu)):
        raise LumbarLabError("the CT has NaN or infinite values; fill them (e.g. with -1000 HU for air) first.")
    return _attenuation(hu_to_mu(hu), ct.affine, ct.spacing, torch.device(device or "cpu"), blur_mm)


def _attenuation(mu: np.ndarray, affine: np.ndarray, spacing, device, blur_mm: float) -> AttenuationVolume:
    if min(mu.shape) < 2:
        raise LumbarLabError(f"the CT needs at least 2 voxels along every axis, got shape {mu.shape}.")
    if blur_mm > 0:
        mu = ndimage.gaussian_filter(mu, [blur_mm / s for s in spacing], mode="constant", truncate=2.5)
    tensor = torch.from_numpy(np.ascontiguousarray(mu, np.float32))[None, None].to(device)
    return AttenuationVolume(tensor, np.asarray(affine, float), tuple(mu.shape), tuple(float(s) for s in spacing))


def _half_depth(vol: AttenuationVolume, m: np.ndarray, geo: ConeGeometry) -> float:
    """Half the depth (mm along the beam) the posed volume's corners span about its centre, plus a voxel."""
    offsets = (vol.corners() - vol.centre) @ m[:3, :3].T @ geo.axes()[0]
    return float(np.abs(offsets).max() + max(vol.spacing))


def drr(ct: Volume | AttenuationVolume, pose: Pose | torch.Tensor, geometry: ConeGeometry,
        step_mm: float | None = None, half_depth: float | None = None,
        return_mask: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """A digitally reconstructed radiograph: for every detector pixel the line integral ∫ μ ds of attenuation
    (dimensionless, the −log of the transmitted fraction, Beer–Lambert) along the ray from the point source, through
    the CT moved by ``pose``.

    Trilinear ray marching: each ray is sampled at evenly spaced depths (planes parallel to the detector) with
    trilinear interpolation (``grid_sample``; zero outside the CT), and the samples are summed times the path length
    per depth step, which a ray leaving the central ray by the angle θ has 1 / cos θ times longer. This is an
    interpolating projector (cf. Joseph, IEEE TMI 1982), not Siddon's exact voxel-crossing algorithm (Med. Phys.
    1985): it integrates the trilinear interpolant of the CT, so detail thinner than a voxel (a cortical shell) is
    smeared by the CT's grid whatever ``step_mm`` is. Every step is a torch operation, so the image is differentiable
    with respect to the pose (DiffDRR, Gopalakrishnan & Golland 2022).

    Args:
        ct: a CT :class:`~lumbarlab.volume.Volume` in HU, or one made by :func:`prepare_ct` (faster when reused).
        pose: a :class:`Pose`, or a 4 × 4 torch matrix (e.g. :func:`pose_matrix` of tensors that require grad).
        geometry: the :class:`ConeGeometry` of the radiograph.
        step_mm: spacing of the samples along the rays' depth (default: the CT's smallest voxel size).
        half_depth: the rays are sampled over ± ``half_depth`` mm of depth about the posed CT centre (which the
            samples follow, so a motion along the beam moves them with the CT); default: the posed CT's half-extent
            along the beam plus a voxel.
        return_mask: also return the pixels whose ray crosses the posed CT at the depth of its centre (bool tensor):
            where the CT's field of view covers the detector.

    Returns:
        ``(rows, cols)`` float32 tensor on the CT's device (and the mask when asked for).

    Raises:
        LumbarLabError: a bad CT or pose, or a CT that no ray crosses (an empty overlap: check isocentre and pose).

    Example:
        >>> hu = np.full((20, 20, 20), -1000.0, np.float32); hu[5:15, 5:15, 5:15] = 1000.0   # 20 mm of bone
        >>> ct = Volume(hu, (2.0, 2.0, 2.0), origin=(-19.0, -19.0, -19.0))
        >>> image = drr(ct, Pose.identity(), ConeGeometry("ap", shape=(7, 7), pixel_mm=4.0))
        >>> round(float(image[3, 3]), 3)   # μ = 2 μ_water = 0.0412 /mm over 20 mm
        0.824
    """
    vol = prepare_ct(ct)
    device = vol.mu.device
    if isinstance(pose, Pose):
        m = torch.as_tensor(pose.matrix(), dtype=torch.float64)
    elif isinstance(pose, torch.Tensor) and tuple(pose.shape) == (4, 4):
        m = pose.to(torch.float64)
    else:
        raise LumbarLabError(f"pose must be a Pose or a 4 × 4 torch matrix, got {type(pose).__name__}.")
    m = m.to(device)
    step = float(step_mm) if step_mm else min(vol.spacing)
    if not step > 0:
        raise LumbarLabError(f"step_mm must be positive, got {step_mm}.")
    half = float(half_depth) if half_depth is not None else _half_depth(vol, m.detach().cpu().numpy(), geometry)
    if not half > 0:
        raise LumbarLabError(f"half_depth must be positive mm, got {half_depth}.")
    centre = torch.as_tensor(np.r_[vol.centre, 1.0], dtype=torch.float64, device=device)
    d_centre = ((m @ centre)[:3] - torch.as_tensor(geometry.isocentre, dtype=torch.float64, device=device)) @ \
        torch.as_tensor(geometry.axes()[0], dtype=torch.float64, device=device)
    if float(d_centre.detach()) + half >= geometry.sod:
        raise LumbarLabError("the CT reaches the X-ray source; move the isocentre or lengthen sod.")
    n = max(int(math.ceil(2 * half / step)), 1)
    h = 2 * half / n
    depths = d_centre + torch.linspace(-half + h / 2, half - h / 2, n, dtype=torch.float64, device=device)
    source = torch.as_tensor(geometry.source, dtype=torch.float64, device=device)
    pixels = torch.as_tensor(geometry.pixel_points(), dtype=torch.float64, device=device)   # (R, C, 3)
    # world → CT index: inverse of the pose, then of the CT's affine; then grid_sample's [-1, 1] (align_corners)
    to_index = torch.as_tensor(np.linalg.inv(vol.affine), dtype=torch.float64, device=device) @ torch.linalg.inv(m)
    size = torch.as_tensor(vol.shape, dtype=torch.float64, device=device) - 1
    # the point of each ray at depth d: source + (pixel − source) (sod − d) / sod; that map is affine in the pixel
    # position, so it is folded into the index transform: index = A · pixel_point + b per depth
    a = to_index[:3, :3]
    rel = pixels - source                                                   # (R, C, 3)
    along = (geometry.sod - depths) / geometry.sod                          # (S,)
    base = (a @ source + to_index[:3, 3])                                   # (3,)
    # in grid_sample's [-1, 1] units and (k, j, i) order; the small factors in float64, the big product in float32
    scale = 2.0 / size
    start = (base * scale - 1.0).flip(-1).to(torch.float32)
    slope = ((rel @ a.T) * scale).flip(-1).to(torch.float32)                # (R, C, 3)
    grid = start + slope[:, :, None, :] * along.to(torch.float32)[None, None, :, None]   # (R, C, S, 3)
    samples = F.grid_sample(vol.mu, grid[None], mode="bilinear", padding_mode="zeros", align_corners=True)[0, 0]
    length = torch.linalg.norm(rel, dim=-1) / geometry.sod * h              # path per depth step, (R, C)
    image = samples.sum(-1) * length.to(torch.float32)
    if not return_mask and not bool((image > 0).any()):
        raise LumbarLabError("no detector ray crosses the CT (an empty overlap): check the geometry's isocentre, "
                             "its detector size and the pose.")
    if not return_mask:
        return image
    mid = base + rel @ a.T * (geometry.sod - d_centre.detach()) / geometry.sod
    inside = ((mid >= -1e-6) & (mid <= size + 1e-6)).all(-1).detach()
    if not bool(inside.any()):
        raise LumbarLabError("no detector ray crosses the CT (an empty overlap): check the geometry's isocentre, "
                             "its detector size and the pose.")
    return image, inside


def gradient_correlation(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient correlation of two images: the mean of the normalised cross-correlations of their row and column
    differences (Penney et al., IEEE TMI 1998). Exactly 1 for images equal up to brightness, contrast and a linear
    ramp (a ramp adds a constant to the differences, which the NCC subtracts); a slowly varying background (such as
    the soft tissue beyond a CT's field of view) changes it only a little, an edge the other image lacks does.

    ``NCC(u, v) = Σ (u − ū)(v − v̄) / sqrt(Σ (u − ū)² Σ (v − v̄)²)`` over the pixels where ``mask`` is true.

    Example:
        >>> x = torch.linspace(0, 1, 64).reshape(8, 8) ** 2
        >>> round(float(gradient_correlation(x, 3 * x + 5 + torch.linspace(0, 1e-3, 8))), 3)
        1.0
    """
    if a.shape != b.shape or a.ndim != 2:
        raise LumbarLabError(f"two images of one (rows, cols) shape are needed, got {tuple(a.shape)} and "
                             f"{tuple(b.shape)}.")
    m = torch.ones_like(a, dtype=torch.bool) if mask is None else mask.to(torch.bool)
    total = a.new_zeros(())
    for dim in (0, 1):
        da, db = torch.diff(a, dim=dim), torch.diff(b, dim=dim)
        keep = (m.narrow(dim, 1, m.shape[dim] - 1) & m.narrow(dim, 0, m.shape[dim] - 1)).to(a.dtype)
        total = total + _ncc(da, db, keep)
    return total / 2


def _ncc(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    count = w.sum().clamp_min(1.0)
    ca = a - (a * w).sum() / count
    cb = b - (b * w).sum() / count
    return (w * ca * cb).sum() / torch.sqrt((w * ca * ca).sum() * (w * cb * cb).sum() + 1e-12)


def simulate_radiograph(ct: Volume | AttenuationVolume, pose: Pose, geometry: ConeGeometry, blur_mm: float = 0.6,
                        photons: float = 5.0e4, rng: np.random.Generator | None = None,
                        step_mm: float | None = None, device: str | torch.device | None = None) -> np.ndarray:
    """A synthetic radiograph of a CT at a pose: the DRR's line integrals ``p``, the detector's blur (Gaussian,
    ``blur_mm`` at the isocentre scale) and quantum noise — ``photons`` per pixel before the patient, Poisson counts
    (Gaussian of the same variance) — returned as ``−log(N / N0)`` (bone bright). No ``rng``: no noise. The DRR is
    computed on ``device`` (default: the CT's, or CPU); blur and noise on the CPU.

    Render it from a CT other than the one you register (a finer grid, its own noise) so that the target is not the
    registration's own model.

    Example:
        >>> hu = np.full((16, 16, 16), -1000.0, np.float32); hu[4:12, 4:12, 4:12] = 0.0
        >>> img = simulate_radiograph(Volume(hu, (2.0,) * 3, origin=(-15.0,) * 3), Pose.identity(),
        ...                           ConeGeometry(shape=(9, 9), pixel_mm=2.0), rng=np.random.default_rng(0))
        >>> img.shape, bool(img[4, 4] > img[0, 0] + 0.2)
        ((9, 9), True)
    """
    with torch.no_grad():
        p = drr(prepare_ct(ct, device), pose, geometry, step_mm=step_mm).cpu().numpy().astype(np.float64)
    if blur_mm > 0:
        p = ndimage.gaussian_filter(p, blur_mm / geometry.pixel_mm, mode="nearest")
    if rng is not None and photons > 0:
        expected = photons * np.exp(-p)
        counts = expected + np.sqrt(expected) * rng.standard_normal(p.shape)
        p = -np.log(np.maximum(counts, 0.5) / photons)
    return p.astype(np.float32)


@dataclass
class PoseResult:
    """What :func:`estimate_pose` found: the pose, the seconds it took, its Adam steps, the loss after each step
    (1 − gradient correlation) and the bin factor of the detector at each step."""

    pose: Pose
    seconds: float
    iterations: int
    losses: list[float]
    levels: list[int]


def bin_image(image, factor: int) -> np.ndarray:
    """An image averaged in ``factor × factor`` blocks (rows and columns that do not fill a block dropped): what the
    detector of :meth:`ConeGeometry.binned` reads.

    Example:
        >>> bin_image(np.arange(20.0).reshape(4, 5), 2).tolist()
        [[3.0, 5.0], [13.0, 15.0]]
    """
    a = np.asarray(image)
    f = int(factor)
    if a.ndim != 2 or f < 1 or f > min(a.shape):
        raise LumbarLabError(f"bin_image needs a 2D image and a factor between 1 and its size, got shape {a.shape} "
                             f"and factor {factor}.")
    rows, cols = a.shape[0] // f, a.shape[1] // f
    return a[:rows * f, :cols * f].reshape(rows, f, cols, f).mean(axis=(1, 3))


def _target_image(radiograph, geometry: ConeGeometry) -> np.ndarray:
    image = radiograph.image if isinstance(radiograph, Radiograph) else radiograph
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image, np.float32)
    if image.shape != geometry.shape:
        raise LumbarLabError(f"the radiograph is {image.shape} pixels but the geometry's detector is "
                             f"{geometry.shape}; make ConeGeometry(shape=...) match the image.")
    if not np.all(np.isfinite(image)):
        raise LumbarLabError("the radiograph has NaN or infinite pixels; fill or crop them first.")
    return image


def estimate_pose(ct: Volume | AttenuationVolume, radiograph, geometry: ConeGeometry, initial: Pose,
                  levels: tuple[int, ...] = (4, 2), iterations: tuple[int, ...] | int = (50, 40),
                  lr: float = 0.5, device: str | torch.device | None = None,
                  step_mm: float | None = None) -> PoseResult:
    """The pose of a CT that makes its DRR match a radiograph, by gradient descent from ``initial``.

    Coarse to fine: at each level the detector is binned ``f × f`` (:meth:`ConeGeometry.binned`), the radiograph
    averaged in the same bins and the CT blurred by σ = f · pixel / 2, so the first steps see only the large
    structures and cannot be trapped by the small ones. The loss is ``1 − gradient_correlation(DRR, radiograph)``
    over the pixels the CT covers; Adam (Kingma & Ba 2015) moves the six pose parameters (rotations about the posed
    centre, translations), with the step size falling as a cosine over each level.

    Args:
        ct: the CT (:class:`~lumbarlab.volume.Volume` in HU) or a :func:`prepare_ct` result.
        radiograph: a 2D array (or :class:`~lumbarlab.volume.Radiograph` / tensor) of the detector's shape, bone
            bright (line integrals or a log image).
        geometry: the radiograph's :class:`ConeGeometry`.
        initial: the starting :class:`Pose` (its centre is the centre of the rotations found).
        levels: bin factors, coarse to fine.
        iterations: Adam steps per level (one number for all).
        lr: Adam's step size at the first level, in the parameters' units: an Adam step moves each parameter by
            about ``lr`` at most, i.e. ``lr`` mm of translation and ``lr`` degrees of rotation; halved at each finer
            level and falling as a cosine to a twentieth of that within a level.
        device: torch device (default: the CT's, or CPU).
        step_mm: sample spacing along the rays (default: the larger of the CT's voxel size and half the binned
            pixel).

    Returns:
        A :class:`PoseResult`.

    Raises:
        LumbarLabError: a radiograph whose shape differs from the detector's, a bad level, an empty overlap.

    Example:
        >>> hu = np.full((20, 20, 20), -1000.0, np.float32); hu[6:14, 4:16, 8:12] = 800.0; hu[9:11, 8:10, 5:15] = 1500.0
        >>> ct = Volume(hu, (2.0,) * 3, origin=(-19.0,) * 3)
        >>> geo = ConeGeometry("lateral", shape=(24, 24), pixel_mm=1.5)
        >>> target = drr(ct, Pose((0.0, 0.0, 0.0), (0.0, 2.0, -1.5)), geo).numpy()
        >>> fit = estimate_pose(ct, target, geo, Pose.identity(), levels=(2, 1), iterations=30)
        >>> np.round(fit.pose.translation_mm[1:], 0).tolist()   # the in-plane shift is found
        [2.0, -2.0]
    """
    t0 = time.perf_counter()
    target_full = _target_image(radiograph, geometry)
    its = (int(iterations),) * len(levels) if np.isscalar(iterations) else tuple(int(i) for i in iterations)
    if not levels or len(its) != len(levels) or any(int(f) < 1 for f in levels):
        raise LumbarLabError(f"levels must be bin factors ≥ 1 with one iteration count each, got levels={levels} "
                             f"and iterations={iterations}.")
    base = prepare_ct(ct, device)
    dev = base.mu.device
    centre = np.asarray(initial.centre)
    m0 = torch.as_tensor(initial.matrix(), dtype=torch.float64, device=dev)
    posed_centre = m0[:3, :3] @ torch.as_tensor(centre, dtype=torch.float64, device=dev) + m0[:3, 3]
    # the unknowns: a rotation (degrees) about the posed centre applied after the start, and a translation (mm)
    theta = torch.zeros(6, dtype=torch.float64, device=dev, requires_grad=True)

    def current() -> torch.Tensor:
        delta = pose_matrix(theta[:3], theta[3:], torch.zeros(3))
        turn = delta[:3, :3]
        r = turn @ m0[:3, :3]
        t = turn @ (m0[:3, 3] - posed_centre) + posed_centre + delta[:3, 3]
        return torch.cat([torch.cat([r, t[:, None]], 1), m0[3:]])

    losses: list[float] = []
    level_of: list[int] = []
    for k, (f, n_it) in enumerate(zip(levels, its, strict=True)):
        f = int(f)
        geo = geometry.binned(f)
        target = bin_image(target_full, f)
        target_t = torch.from_numpy(np.ascontiguousarray(target)).to(dev)
        blur = geo.pixel_mm / 2 if f > 1 else 0.0
        vol = prepare_ct(base, dev, blur_mm=blur) if blur > 0 else base
        step = step_mm or max(min(vol.spacing), geo.pixel_mm / 2)
        with torch.no_grad():   # fixed for the level (so is the number of samples), with room for turns
            half = _half_depth(vol, current().cpu().numpy(), geo) + 10.0
        opt = torch.optim.Adam([theta], lr=lr / 2 ** k)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(n_it, 1), eta_min=lr / 2 ** k / 20)
        for _ in range(n_it):
            opt.zero_grad()
            image, mask = drr(vol, current(), geo, step_mm=step, half_depth=half, return_mask=True)
            loss = 1.0 - gradient_correlation(image, target_t, mask)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            level_of.append(f)
    with torch.no_grad():
        found = Pose.from_matrix(current().cpu().numpy(), centre)
    return PoseResult(found, time.perf_counter() - t0, len(losses), losses, level_of)


def projected_tre(points, estimated: Pose, true: Pose, geometry: ConeGeometry) -> np.ndarray:
    """Reprojection distance per landmark at the isocentre plane, mm: how far apart a landmark's two images lie on the
    detector — one with the CT at the estimated pose, one at the true pose — divided by the magnification (sod + oid)
    / sod, i.e. measured with a ruler calibrated at the isocentre plane. Its mean over the landmarks is the **mean
    reprojection distance (mRPD)**. The name is kept for the API; it is a 2D image error, not a 3D target
    registration error (TRE), and not van de Kraats et al.'s 3D projection distance (:func:`projection_distance`).
    A single view cannot see motion along its rays except through the magnification: that error is in the 3D TRE,
    not here.

    Args:
        points: (N, 3) landmarks in CT world mm.
        estimated, true: the two poses.
        geometry: the radiograph's geometry.

    Example:
        >>> geo = ConeGeometry("lateral")
        >>> pts = [[0.0, 0.0, 0.0], [0.0, 20.0, 40.0]]
        >>> projected_tre(pts, Pose((0, 0, 0), (0, 1.0, 0)), Pose.identity(), geo).round(3).tolist()  # 1 mm in-plane
        [1.0, 1.0]
        >>> projected_tre(pts, Pose((0, 0, 0), (5.0, 0, 0)), Pose.identity(), geo).round(3).tolist()  # 5 mm along rays
        [0.0, 0.25]
    """
    p = np.asarray(points, float)
    return np.linalg.norm(geometry.project(estimated.apply(p)) - geometry.project(true.apply(p)), axis=1)


def projection_distance(points, estimated: Pose, true: Pose, geometry: ConeGeometry) -> np.ndarray:
    """Projection distance per landmark, mm (van de Kraats et al., "Standardized evaluation methodology for 2-D–3-D
    registration", IEEE TMI 2005): the 3D distance of the landmark at the estimated pose from the line through the
    X-ray source and the landmark at the true pose (the ray its true image lies on). Its mean over the landmarks is
    their mPD. Like the reprojection distance it is blind to motion along the rays, but it is measured where the
    landmark is, not on the detector.

    Args:
        points: (N, 3) landmarks in CT world mm.
        estimated, true: the two poses.
        geometry: the radiograph's geometry (only its source is used).

    Example:
        >>> geo = ConeGeometry("lateral", sod=900.0)
        >>> pts = [[0.0, 0.0, 0.0], [0.0, 90.0, 0.0]]
        >>> projection_distance(pts, Pose((0, 0, 0), (0, 0, 2.0)), Pose.identity(), geo).round(3).tolist()
        [2.0, 2.0]
        >>> projection_distance(pts, Pose((0, 0, 0), (10.0, 0, 0)), Pose.identity(), geo).round(3).tolist()
        [0.0, 0.995]
    """
    p = np.asarray(points, float)
    est, tru = estimated.apply(p), true.apply(p)
    ray = tru - geometry.source
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    off = est - geometry.source
    return np.linalg.norm(off - (off * ray).sum(1, keepdims=True) * ray, axis=1)
