"""Renderers: material map → CT (HU), MRI (T1, T2) and X-ray projections.

Intensities per material come from look-up tables built per case (population values plus
the case's jitter and pathology), so rendering a modality is one gather, a small blur for
the scanner's point-spread function and a noise model.

References for the values: CT numbers after Hounsfield-scale tables in Bushberg et al.,
*The Essential Physics of Medical Imaging* (fat −100, muscle 40–60, CSF 0–15, disc 70–100,
trabecular bone 100–300 falling with osteoporosis, cortical bone up to >1000 HU). MRI
orderings after Pfirrmann et al., Spine 2001 (nucleus T2 signal by grade) and standard
spin-echo contrast (fat bright on T1 and T2, CSF dark on T1 and bright on T2).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lumbarlab.phantom.labels import DISCS, VERTEBRAE, Material
from lumbarlab.phantom.noise import standard_normal
from lumbarlab.phantom.params import PhantomParams

__all__ = [
    "ct_table", "mri_table", "render_ct", "render_mri", "project", "MU_WATER_PER_MM",
    "hu_to_mu", "xray_display", "apply_bias_field", "radiograph_background",
]

#: Linear attenuation of water at ~60 keV effective energy, 0.206 /cm (NIST XCOM), in /mm.
MU_WATER_PER_MM = 0.0206

_NUCLEUS_T2 = {1: 900.0, 2: 740.0, 3: 450.0, 4: 290.0, 5: 170.0}
_ANNULUS_T2 = {1: 170.0, 2: 175.0, 3: 240.0, 4: 250.0, 5: 170.0}


def ct_table(params: PhantomParams) -> np.ndarray:
    """HU per material code for this case (float32, length ``Material.COUNT``)."""
    j = params.intensity_jitter
    lut = np.zeros(Material.COUNT, dtype=np.float32)
    lut[Material.AIR] = -1000.0
    lut[Material.FAT] = -100.0 + 8.0 * j.get("fat", 0.0)
    lut[Material.SOFT] = 35.0
    lut[Material.MUSCLE] = 50.0 + 4.0 * j.get("muscle", 0.0)
    lut[Material.EPIDURAL_FAT] = -90.0 + 6.0 * j.get("fat", 0.0)
    lut[Material.CSF] = 8.0 + 2.5 * j.get("csf", 0.0)
    lut[Material.NERVE] = 30.0
    lut[Material.CORTICAL] = 950.0 + 80.0 * j.get("cortical", 0.0)
    lut[Material.POSTERIOR] = 450.0 + 0.5 * (params.bmd - 180.0)
    for i, disc in enumerate(DISCS):
        grade = params.pfirrmann[disc]
        lut[Material.ANNULUS0 + i] = 92.0 + 4.0 * j.get("disc", 0.0)
        lut[Material.NUCLUS0 + i] = 75.0 + 4.0 * j.get("disc", 0.0) + 4.0 * (grade - 1)
    for i, name in enumerate(VERTEBRAE):
        density = params.bmd * (0.8 if name == "S1" else 1.0)
        if params.fracture.get(name, 0.0) > 0:
            density *= 1.15  # compacted trabeculae in a compression fracture
        lut[Material.TRABECULAR0 + i] = density
    return lut


def mri_table(params: PhantomParams, weighting: str) -> np.ndarray:
    """Signal (arbitrary units, 0–1000) per material for ``"T1"`` or ``"T2"`` spin echo."""
    t1 = weighting.upper() == "T1"
    scale = 1.0 + 0.05 * params.intensity_jitter.get("mri", 0.0)
    lut = np.zeros(Material.COUNT, dtype=np.float32)
    lut[Material.FAT] = 900.0 if t1 else 720.0
    lut[Material.SOFT] = 400.0 if t1 else 480.0
    lut[Material.MUSCLE] = 380.0 if t1 else 220.0
    lut[Material.EPIDURAL_FAT] = 880.0 if t1 else 700.0
    lut[Material.CSF] = 150.0 if t1 else 980.0
    lut[Material.NERVE] = 430.0 if t1 else 380.0
    lut[Material.CORTICAL] = 60.0 if t1 else 50.0
    lut[Material.POSTERIOR] = 380.0 if t1 else 300.0
    # Fattier marrow in osteoporotic bone raises its signal (more on T1 than on T2).
    marrow_t1 = float(np.clip(560.0 + 1.2 * (180.0 - params.bmd), 300.0, 900.0))
    marrow_t2 = float(np.clip(420.0 + 0.6 * (180.0 - params.bmd), 250.0, 700.0))
    for i in range(len(VERTEBRAE)):
        lut[Material.TRABECULAR0 + i] = marrow_t1 if t1 else marrow_t2
    for i, disc in enumerate(DISCS):
        grade = params.pfirrmann[disc]
        lut[Material.ANNULUS0 + i] = 300.0 if t1 else _ANNULUS_T2[grade]
        lut[Material.NUCLUS0 + i] = 350.0 if t1 else _NUCLEUS_T2[grade]
    return lut * scale


def _psf(image: np.ndarray, sigma_vox: float) -> np.ndarray:
    """Small Gaussian blur standing in for the scanner's point-spread function."""
    if sigma_vox <= 0:
        return image
    return ndimage.gaussian_filter(image, sigma=sigma_vox, truncate=2.5, output=np.float32)


def render_ct(
    material: np.ndarray, params: PhantomParams, rng: np.random.Generator | None,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0), exact_noise: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """CT in HU: (noisy image, noise-free image), both float32.

    Noise is Gaussian with sigma ``ct_noise / sqrt(ct_dose)`` HU — quantum noise falls
    with the square root of the tube current-time product (Bushberg et al., ch. 10).
    """
    clean = _psf(ct_table(params)[material], 0.6 / min(spacing))
    if rng is None or params.ct_noise == 0:
        return clean, clean
    sigma = params.ct_noise / np.sqrt(params.ct_dose)
    noisy = standard_normal(rng, clean.shape, exact=exact_noise)
    noisy *= np.float32(sigma)
    noisy += clean
    return noisy, clean


def apply_bias_field(image: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Multiply ``image`` in place by a smooth field: the product of one low-frequency cosine
    per axis (a separable stand-in for coil sensitivity), ``1 ± amplitude`` per axis."""
    for axis, n in enumerate(image.shape):
        t = np.linspace(0.0, 1.0, n, dtype=np.float32)
        f = 1.0 + amplitude * np.cos(2 * np.pi * (rng.uniform(0.3, 0.8) * t + rng.uniform()))
        image *= f.astype(np.float32).reshape([-1 if a == axis else 1 for a in range(image.ndim)])
    return image


def render_mri(
    material: np.ndarray, params: PhantomParams, weighting: str, rng: np.random.Generator | None,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0), exact_noise: bool = False,
) -> np.ndarray:
    """T1- or T2-weighted MRI (float32, a.u.) with a bias field and Rician noise.

    Rician noise: the magnitude of the signal plus complex Gaussian noise,
    ``|S + n1 + i·n2|`` (Gudbjartsson & Patz, Magn Reson Med 1995).
    """
    # No PSF blur here: at 1 mm the Rician noise, not the point-spread, sets the look.
    signal = mri_table(params, weighting)[material]
    if rng is None:
        return signal
    apply_bias_field(signal, params.mri_bias, rng)
    sigma = np.float32(params.mri_noise * 1000.0)
    n1 = standard_normal(rng, signal.shape, exact=exact_noise)
    n1 *= sigma
    n1 += signal
    n2 = standard_normal(rng, signal.shape, exact=exact_noise)
    n2 *= sigma
    np.multiply(n1, n1, out=n1)
    np.multiply(n2, n2, out=n2)
    n1 += n2
    return np.sqrt(n1, out=n1)


def hu_to_mu(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation (/mm) from HU: mu = mu_water · (1 + HU/1000), clipped at 0 for air."""
    return np.maximum(hu * np.float32(MU_WATER_PER_MM / 1000.0) + np.float32(MU_WATER_PER_MM), 0.0)


def project(mu: np.ndarray, axis: int, step_mm: float) -> np.ndarray:
    """Line integrals of attenuation along one array axis (parallel beam), dimensionless."""
    return mu.sum(axis=axis, dtype=np.float32) * np.float32(step_mm)


def xray_display(
    line_integral: np.ndarray, photons: float, rng: np.random.Generator | None, pixel_mm: float = 1.0,
) -> np.ndarray:
    """Detector model and display of a radiograph, in [0, 1] with bone bright.

    Counts are Poisson, ``N ~ Poisson(N0·exp(-p))``, and the image is ``-log(N/N0)``; it is
    then equalised like a digital radiograph (:func:`radiograph_background`) and windowed to
    the 1st–99.9th percentile of the *noise-free* equalised image, so noise never shifts the
    display window.
    """
    p = line_integral.astype(np.float32)
    background = radiograph_background(p, pixel_mm)
    clean = p - background
    sample = clean[::4, ::4]
    lo, hi = float(np.percentile(sample, 1.0)), float(np.percentile(sample, 99.9))
    if rng is not None:
        counts = rng.poisson(photons * np.exp(-p)).astype(np.float32)
        clean = -np.log(np.maximum(counts, 0.5) / np.float32(photons)) - background
    return np.clip((clean - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)


def radiograph_background(p: np.ndarray, pixel_mm: float, sigma_mm: float = 25.0, strength: float = 0.75) -> np.ndarray:
    """The share of a radiograph that digital-radiography equalisation removes: a heavily
    blurred copy (25 mm Gaussian) times ``strength``, so that the thick abdomen and the thin
    back show bone with the same contrast (large-kernel unsharp masking).

    The blur runs on a 4× decimated copy: the background is smooth, and a 25 mm Gaussian at
    full resolution would cost more than rendering the radiograph.
    """
    factor = 4 if min(p.shape) >= 32 else 1
    small = ndimage.zoom(p, 1.0 / factor, order=1, mode="nearest", grid_mode=True) if factor > 1 else p
    blurred = ndimage.gaussian_filter(small, sigma=sigma_mm / (pixel_mm * factor), mode="nearest", truncate=3.0)
    if factor > 1:
        zoom = (p.shape[0] / small.shape[0], p.shape[1] / small.shape[1])
        blurred = ndimage.zoom(blurred, zoom, order=1, mode="nearest", grid_mode=True)
    return (np.float32(strength) * blurred).astype(np.float32)
