"""How a clinical radiograph is taken: point-source geometry, patient positioning and the detector.

Geometry (:class:`XrayGeometry`): the source sits ``sod`` mm from the isocentre plane (the mid-sagittal
plane for a lateral view, the mid-coronal plane for an AP view) and the detector ``oid`` mm beyond it.
Images are kept at the isocentre plane's scale (as a calibrated PACS ruler does), so a structure at depth
``d`` (mm towards the source) is magnified by ``sod / (sod − d)`` relative to it, and a patient turned by
``rotation`` degrees about the vertical axis (or the beam angled by ``tilt`` degrees) shifts each depth by
``d · tan(angle)``. The two sides of a vertebral body therefore project apart: the doubled endplates and
posterior walls of every real lumbar radiograph away from the central ray.

Detector (:func:`detector_display`): exposure and kVp per case, the heel effect (intensity falling
towards the anode), scatter (a blurred share of the primary, cut by a grid), collimation (unexposed
borders), Poisson noise, then the vendor's processing — equalisation strength, display gamma and edge
enhancement — varying between cases as it varies between departments.

Example:
    >>> g = XrayGeometry(sod=900.0, oid=200.0, rotation=0.0, tilt=0.0)
    >>> round(g.magnification(100.0), 4), g.sid
    (1.125, 1100.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lumbarlab.phantom.noise import standard_normal
from lumbarlab.phantom.params import PhantomParams
from lumbarlab.phantom.render import xray_display

__all__ = ["XrayGeometry", "geometry", "project_cone", "detector_display"]


@dataclass(frozen=True)
class XrayGeometry:
    """Source–isocentre distance ``sod`` and isocentre–detector distance ``oid`` (mm); patient rotation about
    the vertical axis and beam tilt (degrees)."""

    sod: float
    oid: float
    rotation: float
    tilt: float

    @property
    def sid(self) -> float:
        """Source–image distance, mm."""
        return self.sod + self.oid

    def magnification(self, depth: np.ndarray | float) -> np.ndarray | float:
        """Size at the isocentre scale of a structure ``depth`` mm nearer the source than the isocentre."""
        m = self.sod / (self.sod - np.asarray(depth, dtype=float))
        return float(m) if m.ndim == 0 else m

    def to_detector(self, across: np.ndarray, up: np.ndarray, depth: np.ndarray, centre: tuple[float, float]):
        """World (across, up) coordinates at ``depth`` → where the ray through them meets the isocentre plane."""
        m = self.sod / (self.sod - np.asarray(depth, dtype=float))
        shift_a = np.asarray(depth) * math.tan(math.radians(self.rotation))
        shift_u = np.asarray(depth) * math.tan(math.radians(self.tilt))
        return centre[0] + (across - shift_a - centre[0]) * m, centre[1] + (up - shift_u - centre[1]) * m

    def sample_at(self, across: np.ndarray, up: np.ndarray, depth: float, centre: tuple[float, float]):
        """The inverse of :meth:`to_detector`: where the ray through isocentre-plane point (across, up) passes
        depth ``depth``."""
        k = (self.sod - depth) / self.sod
        return (centre[0] + (across - centre[0]) * k + depth * math.tan(math.radians(self.rotation)),
                centre[1] + (up - centre[1]) * k + depth * math.tan(math.radians(self.tilt)))


def geometry(params: PhantomParams) -> XrayGeometry | None:
    """The case's radiographic geometry, or None for the teaching preset's parallel beam.

    Example:
        >>> from lumbarlab.phantom.params import sample_params
        >>> geometry(sample_params(1, realism="teaching")) is None
        True
        >>> g = geometry(sample_params(1, acquisition={"xray_sid_mm": 1000.0, "xray_oid_mm": 150.0}))
        >>> g.sod, g.sid
        (850.0, 1000.0)
    """
    if not params.look.cone_beam:
        return None
    acq = params.acquisition
    return XrayGeometry(acq["xray_sid_mm"] - acq["xray_oid_mm"], acq["xray_oid_mm"], acq["xray_rotation_deg"],
                        acq["xray_tilt_deg"])


def project_cone(volume: np.ndarray, axis: int, step_mm: float, depths: np.ndarray, geo: XrayGeometry,
                 pixel_mm: tuple[float, float], origin: tuple[float, float], centre: tuple[float, float],
                 slab_mm: float = 4.0) -> np.ndarray:
    """Line integrals of ``volume`` along ``axis`` through a point source: the volume is summed in slabs of
    ``slab_mm`` and each slab resampled at its own magnification and shift (:meth:`XrayGeometry.sample_at`).

    Args:
        volume: 3D array; ``axis`` the ray direction, the other two (across, up) in array order.
        step_mm: voxel size along the rays.
        depths: depth (mm towards the source) of each index along ``axis``.
        geo: the geometry.
        pixel_mm, origin: spacing and world coordinate of index 0 of the (across, up) axes.
        centre: world (across, up) of the central ray.
        slab_mm: thickness of the slabs that share one magnification.

    Example:
        >>> vol = np.zeros((20, 32, 32), np.float32); vol[:, 14:18, 14:18] = 1.0  # a 4 mm rod along the rays
        >>> g = XrayGeometry(sod=900.0, oid=200.0, rotation=0.0, tilt=0.0)
        >>> p = project_cone(vol, 0, 1.0, np.arange(20) - 9.5, g, (1.0, 1.0), (-15.5, -15.5), (0.0, 0.0))
        >>> abs(float(p.sum()) - 320.0) < 3.2  # 20 mm × 16 mm² of rod; near and far slabs magnify by ±1 %
        True
    """
    vol = np.moveaxis(volume, axis, 0)
    n = vol.shape[0]
    per = max(int(round(slab_mm / step_mm)), 1)
    out = np.zeros(vol.shape[1:], dtype=np.float32)
    for start in range(0, n, per):
        slab = vol[start:start + per].sum(axis=0, dtype=np.float32) * np.float32(step_mm)
        if not slab.any():
            continue
        depth = float(np.mean(depths[start:start + per]))
        # input index = k · output index + offset, per axis: sample_at is linear, so its value at index 0
        # gives the offset and its slope k = (sod − depth) / sod
        k = (geo.sod - depth) / geo.sod
        at_a, at_u = geo.sample_at(origin[0], origin[1], depth, centre)
        offset = [(at_a - origin[0]) / pixel_mm[0], (at_u - origin[1]) / pixel_mm[1]]
        out += ndimage.affine_transform(slab, [k, k], offset=offset, order=1, mode="nearest")
    return out


def detector_display(p: np.ndarray, params: PhantomParams, rng: np.random.Generator | None,
                     pixel_mm: float) -> np.ndarray:
    """Line integrals ``p`` (display orientation: rows superior → inferior) → a processed radiograph in
    [0, 1], bone bright. The teaching preset is :func:`lumbarlab.phantom.render.xray_display` unchanged.

    Args:
        p: dimensionless line integrals of attenuation, one per detector pixel.
        params: the case (its ``acquisition`` values and ``xray_photons``).
        rng: the noise generator, or None for the noise-free image.
        pixel_mm: detector pixel size at the isocentre (mm).

    Example:
        >>> from lumbarlab.phantom.params import sample_params
        >>> p = np.full((64, 64), 4.0, np.float32); p[20:40, 20:40] += 0.5  # a denser square
        >>> img = detector_display(p, sample_params(2, acquisition={"xray_collimation": [0, 0, 0, 0]}), None, 1.0)
        >>> bool(img[30, 30] > img[5, 5])  # the dense square is brighter
        True
    """
    if not params.look.detector:
        return xray_display(p, params.xray_photons, rng, pixel_mm)
    acq = params.acquisition
    p = p.astype(np.float32) * np.float32(1.0 - 0.006 * (acq["xray_kvp"] - 85.0))  # harder beam, less contrast
    rows, cols = p.shape
    heel = 1.0 + acq["xray_heel"] * np.linspace(-1.0, 1.0, rows, dtype=np.float32)  # anode at one end
    n0 = np.float32(params.xray_photons * acq["xray_exposure"]) * heel[:, None]
    primary = n0 * np.exp(-p)
    # One heavy blur (25 mm) of the line integrals serves twice: the scatter — a smooth fog, SPR times the
    # primary that the locally averaged thickness lets through (the scatter-to-primary ratio is local) —
    # and the processing's equalisation, which subtracts a share of the same low-frequency content
    # (:func:`lumbarlab.phantom.render.radiograph_background`, here on the line integrals).
    smooth = ndimage.gaussian_filter(p[::4, ::4], sigma=25.0 / (4 * pixel_mm), mode="nearest", truncate=2.5)
    smooth = ndimage.zoom(smooth, (rows / smooth.shape[0], cols / smooth.shape[1]), order=1, mode="nearest",
                          grid_mode=True)[:rows, :cols].astype(np.float32)
    scatter = np.float32(acq["xray_scatter_ratio"]) * n0 * np.exp(-smooth)
    expected = primary + scatter
    top, bottom, left, right = (int(round(f * n)) for f, n in zip(acq["xray_collimation"], (rows, rows, cols, cols),
                                                                     strict=True))
    shutter = np.zeros((rows, cols), dtype=bool)
    shutter[:top] = shutter[rows - bottom:] = True
    shutter[:, :left] = True
    shutter[:, cols - right:] = True
    expected[shutter] = n0[np.nonzero(shutter)[0], 0] * np.float32(math.exp(-7.0))  # behind the collimator blades
    reference = np.float32(params.xray_photons * acq["xray_exposure"])
    clean = -np.log(np.maximum(expected, 1e-3) / reference)
    if rng is None:
        measured = clean
    else:  # Poisson counts; at these counts (≥ 100 behind the thickest bone) a Gaussian of the same variance
        counts = expected + np.sqrt(expected) * standard_normal(rng, expected.shape)
        measured = -np.log(np.maximum(counts, 0.5) / reference)
    background = np.float32(acq["xray_equalisation"]) * smooth
    clean, measured = clean - background, measured - background
    # Window from the histogram of the anatomy: the exposed field (collimated borders left out) where the
    # patient is thick (line integral above 40 % of its 99th percentile), not the skin's thin edge —
    # detector software finds the region of interest the same way and lets the skin line burn out.
    exposed = (slice(top, rows - bottom or None), slice(left, cols - right or None))
    thick = p[exposed] >= 0.4 * float(np.percentile(p[exposed][::4, ::4], 99.0))
    inner = clean[exposed][thick] if thick.sum() > 100 else clean[exposed].ravel()
    inner = inner[:: max(inner.size // 20000, 1)]
    lo, hi = float(np.percentile(inner, 0.5)), float(np.percentile(inner, 99.8))
    image = np.clip((measured - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    if acq["xray_sharpen"] > 0:
        blur = ndimage.gaussian_filter(image, sigma=2.0 / pixel_mm, truncate=2.5)
        image = np.clip(image + np.float32(acq["xray_sharpen"]) * (image - blur), 0.0, 1.0)
    return (image ** np.float32(acq["xray_gamma"])).astype(np.float32)
