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
    "hu_to_mu", "xray_display", "apply_bias_field", "radiograph_background", "ct_noise_sd",
    "trabecular_texture", "texture_hu", "KERNEL_NOISE",
]

#: Noise SD of each CT reconstruction kernel relative to the standard kernel (sharper kernels pass more
#: high-frequency noise; Bushberg et al., ch. 10).
KERNEL_NOISE = {"soft": 0.75, "standard": 1.0, "bone": 1.8}
#: Smoothing (voxels) of white noise that gives each kernel its noise texture; the bone kernel is
#: high-passed instead (white noise minus half its blur).
_KERNEL_GRAIN = {"soft": 0.9, "standard": 0.5, "bone": 0.0}
_CONTRAST_HU = {  # material → HU by phase (native, arterial, portal venous)
    Material.AORTA: (40.0, 320.0, 170.0), Material.IVC: (38.0, 70.0, 150.0),
    Material.KIDNEY: (30.0, 150.0, 160.0), Material.LIVER: (55.0, 70.0, 110.0),
}
# Contrast reaches trabecular marrow too: about +11 HU at L1 in the portal phase
# (Pickhardt et al., "Effect of IV contrast on lumbar trabecular attenuation", AJR 2011).
_TRABECULAR_PHASE_HU = {"native": 0.0, "arterial": 5.0, "portal": 11.0}

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
    base = float(lut[Material.TRABECULAR0 + 3])
    lut[Material.MODIC1] = base - 15.0  # oedema: a little less dense
    lut[Material.MODIC2] = base - 45.0  # fat replaces marrow
    lut[Material.SCLEROSIS] = base + 450.0  # reactive new bone
    if params.look.surroundings:
        lut[Material.PELVIS] = 650.0 + 0.5 * (params.bmd - 180.0)  # thin plate: cortical shells dominate
        lut[Material.RIB] = 320.0 + 0.5 * (params.bmd - 180.0)  # a thin cortical tube around marrow
        phase = params.acquisition.get("ct_phase", "native")
        for code, hus in _CONTRAST_HU.items():
            lut[code] = hus[("native", "arterial", "portal").index(phase)]
    if params.look.ct_physics:
        phase = params.acquisition["ct_phase"]
        lut[Material.TRABECULAR0: Material.TRABECULAR0 + len(VERTEBRAE)] += _TRABECULAR_PHASE_HU[phase]
        # Bone reads higher at low kVp and lower at high kVp (photoelectric share of calcium's attenuation):
        # about ±8 % per 20 kV around 120 kVp for trabecular and cortical bone.
        factor = np.float32(1.0 - 0.004 * (params.acquisition["ct_kvp"] - 120.0))
        bone = lut > 100.0
        lut[bone] *= factor
    if params.domain_randomise:
        lut = _randomised(lut, params, "ct")
    return lut


def _randomised(lut: np.ndarray, params: PhantomParams, modality: str) -> np.ndarray:
    """Domain randomisation: every tissue's value drawn at random per case (SynthSeg's idea, Billot et al.,
    Med Image Anal 2023), keeping air fixed; CT values stay within −150…1500 HU."""
    rng = np.random.default_rng([params.seed, 0xD0, len(modality)])
    out = lut.copy()
    if modality == "ct":
        out[1:] = np.clip(lut[1:] * rng.uniform(0.6, 1.4, lut.size - 1) + rng.normal(0.0, 40.0, lut.size - 1),
                          -150.0, 1500.0)
    else:
        out[1:] = rng.uniform(30.0, 1000.0, lut.size - 1)
    return out.astype(np.float32)


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
    # Marrow fat rises with age: +4 (T1) / +2 (T2) units a year around 45 (vertebral marrow fat fraction grows
    # with age, Kugel et al., J Magn Reson Imaging 2001).
    marrow_t1 = float(np.clip(marrow_t1 + 4.0 * (params.age - 45.0), 250.0, 950.0))
    marrow_t2 = float(np.clip(marrow_t2 + 2.0 * (params.age - 45.0), 220.0, 750.0))
    for i in range(len(VERTEBRAE)):
        lut[Material.TRABECULAR0 + i] = marrow_t1 if t1 else marrow_t2
    lut[Material.MODIC1] = 200.0 if t1 else 820.0  # Modic et al., Radiology 1988
    lut[Material.MODIC2] = 880.0 if t1 else 650.0
    lut[Material.SCLEROSIS] = 100.0 if t1 else 80.0
    for i, disc in enumerate(DISCS):
        grade = params.pfirrmann[disc]
        lut[Material.ANNULUS0 + i] = 300.0 if t1 else _ANNULUS_T2[grade]
        lut[Material.NUCLUS0 + i] = 350.0 if t1 else _NUCLEUS_T2[grade]
    if params.look.surroundings:  # spin-echo values: bone dark, kidney/liver intermediate, flowing blood void
        lut[Material.PELVIS] = 420.0 if t1 else 330.0  # marrow-rich bone
        lut[Material.RIB] = 300.0 if t1 else 250.0
        lut[Material.KIDNEY] = 420.0 if t1 else 650.0
        lut[Material.LIVER] = 500.0 if t1 else 260.0
        lut[Material.AORTA] = 60.0
        lut[Material.IVC] = 80.0
    if params.look.mri_physics:  # scanners differ in contrast: stretch values about mid-grey
        c = params.acquisition["mri_contrast"]
        lut = np.where(lut > 0, np.clip(500.0 + c * (lut - 500.0), 20.0, 1000.0), lut).astype(np.float32)
    if params.domain_randomise:
        lut = _randomised(lut, params, weighting)
    return lut * scale


def _psf(image: np.ndarray, sigma_vox: float) -> np.ndarray:
    """Small Gaussian blur standing in for the scanner's point-spread function."""
    if sigma_vox <= 0:
        return image
    return ndimage.gaussian_filter(image, sigma=sigma_vox, truncate=2.5, output=np.float32)


def ct_noise_sd(params: PhantomParams) -> float:
    """CT noise SD in HU: ``ct_noise`` at the reference (dose 1, standard kernel, 1 mm slices), times the
    kernel's factor (:data:`KERNEL_NOISE`), over √dose and over √(slice thickness / 1 mm) — quantum noise
    falls with the square root of the photons a voxel collects (Bushberg et al., ch. 10).

    Example:
        >>> from lumbarlab.phantom.params import sample_params
        >>> ct_noise_sd(sample_params(1, realism="teaching", ct_dose=4.0))
        6.0
    """
    sd = params.ct_noise / np.sqrt(params.ct_dose)
    if params.look.ct_physics:
        acq = params.acquisition
        sd *= KERNEL_NOISE[acq["ct_kernel"]] / np.sqrt(max(acq["ct_slice_mm"], 1.0))
    return float(sd)


def trabecular_texture(material: np.ndarray, params: PhantomParams, spacing: tuple[float, float, float]):
    """(index slices, texture field) over the box of the trabecular voxels, or None without texture.

    Example:
        >>> from lumbarlab.phantom.params import sample_params
        >>> mat = np.zeros((20, 20, 20), np.uint8); mat[5:15, 5:15, 5:15] = Material.TRABECULAR0 + 2
        >>> sl, field = trabecular_texture(mat, sample_params(1), (1.0, 1.0, 1.0))
        >>> field.shape, trabecular_texture(mat, sample_params(1, realism="teaching"), (1.0, 1.0, 1.0))
        ((10, 10, 10), None)
    """
    if not params.look.texture:
        return None
    from lumbarlab.phantom.texture import texture_3d, texture_rng

    trab = (material >= Material.TRABECULAR0) & (material < Material.TRABECULAR0 + len(VERTEBRAE))
    box = ndimage.find_objects(trab.astype(np.uint8))
    if not box or box[0] is None:
        return None
    sl = box[0]
    rng = texture_rng(params.seed, params.acquisition.get("texture_seed", 0))
    return sl, texture_3d(rng, tuple(s.stop - s.start for s in sl), spacing)


def _with_texture(image: np.ndarray, material: np.ndarray, texture, scale: float | np.ndarray) -> None:
    """Add ``scale · field`` to the trabecular voxels of ``image`` in place."""
    if texture is None:
        return
    sl, field = texture
    mat = material[sl]
    trab = (mat >= Material.TRABECULAR0) & (mat < Material.TRABECULAR0 + len(VERTEBRAE))
    view = image[sl]
    view[trab] += (np.float32(scale) * field)[trab] if np.ndim(scale) == 0 else (scale[sl] * field)[trab]


def _kernel_noise(rng, shape, kernel: str | None, exact: bool) -> np.ndarray:
    """Unit-SD noise with the texture of a reconstruction kernel (white for the teaching preset)."""
    noise = standard_normal(rng, shape, exact=exact)
    if kernel is None:
        return noise
    grain = _KERNEL_GRAIN[kernel]
    if grain > 0:
        noise = ndimage.gaussian_filter(noise, sigma=(grain, grain, 0.0), truncate=2.5, output=np.float32)
    else:
        noise -= 0.5 * ndimage.gaussian_filter(noise, sigma=(1.0, 1.0, 0.0), truncate=2.5, output=np.float32)
    noise /= np.float32(max(float(noise[::3, ::3, ::3].std()), 1e-6))
    return noise


def render_ct(
    material: np.ndarray, params: PhantomParams, rng: np.random.Generator | None,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0), exact_noise: bool = False, texture=None,
) -> tuple[np.ndarray, np.ndarray]:
    """CT in HU: (noisy image, noise-free image), both float32.

    Clinical realism adds the trabecular ``texture`` (:func:`trabecular_texture`), the slice thickness
    (a box profile along z: partial volume), the bone kernel's edge enhancement and the kernel's noise
    texture. The noise SD is :func:`ct_noise_sd` — quantum noise falls with the square root of the tube
    current-time product (Bushberg et al., ch. 10).
    """
    clean = ct_table(params)[material]
    _with_texture(clean, material, texture, texture_hu(params))
    clean = _psf(clean, 0.6 / min(spacing))
    kernel = None
    if params.look.ct_physics:
        acq = params.acquisition
        kernel = acq["ct_kernel"]
        if acq["ct_slice_mm"] > spacing[2]:
            clean = ndimage.uniform_filter1d(clean, size=max(int(round(acq["ct_slice_mm"] / spacing[2])), 1), axis=2)
        if kernel == "bone":  # edge enhancement of a sharp kernel (unsharp masking in the slice plane)
            blur = ndimage.gaussian_filter(clean, sigma=(1.0, 1.0, 0.0), truncate=2.5, output=np.float32)
            clean = clean + np.float32(0.6) * (clean - blur)
    if rng is None or params.ct_noise == 0:
        return clean, clean
    noisy = _kernel_noise(rng, clean.shape, kernel, exact_noise)
    noisy *= np.float32(ct_noise_sd(params))
    noisy += clean
    return noisy, clean


def texture_hu(params: PhantomParams) -> float:
    """Texture amplitude in HU: :data:`lumbarlab.phantom.texture.CT_TEXTURE_HU`, a little stronger in
    osteoporotic bone, whose sparser lattice is more heterogeneous (+0.2 % per HU below 180).

    Example:
        >>> from lumbarlab.phantom.params import sample_params
        >>> texture_hu(sample_params(1, bmd=200.0)), texture_hu(sample_params(1, bmd=80.0))
        (55.0, 66.0)
    """
    from lumbarlab.phantom.texture import CT_TEXTURE_HU

    return float(CT_TEXTURE_HU * (1.0 + 0.002 * max(180.0 - params.bmd, 0.0)))


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
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0), exact_noise: bool = False, texture=None,
    back_distance: np.ndarray | None = None,
) -> np.ndarray:
    """T1- or T2-weighted MRI (float32, a.u.) with a bias field and Rician noise.

    Clinical realism adds the trabecular ``texture`` to marrow and a posterior coil's fall-off with
    ``back_distance`` (mm from the back's skin, one value per grid row along y).

    Rician noise: the magnitude of the signal plus complex Gaussian noise,
    ``|S + n1 + i·n2|`` (Gudbjartsson & Patz, Magn Reson Med 1995).
    """
    # No PSF blur here: at 1 mm the Rician noise, not the point-spread, sets the look.
    signal = mri_table(params, weighting)[material]
    if texture is not None:  # trabeculae are dark on MR: more bone, less marrow signal
        marrow = signal * np.float32(0.08)
        _with_texture(signal, material, texture, -marrow)
    if params.look.mri_physics and back_distance is not None:
        # A posterior spine coil: sensitivity falls with depth from the back's skin.
        falloff = params.acquisition["mri_coil_falloff_mm"]
        gain = (0.3 + 0.7 * np.exp(-np.clip(back_distance, 0.0, None) / falloff)).astype(np.float32)
        signal *= gain[None, :, None]
    if params.look.mri_physics and params.acquisition.get("mri_flow_voids") and weighting.upper() == "T2":
        # pulsatile CSF: patchy signal voids in the thecal sac (smooth noise above 1 SD → a quarter signal)
        csf = material == Material.CSF
        if csf.any():
            from lumbarlab.phantom.texture import texture_3d

            box = ndimage.find_objects(csf.astype(np.uint8))[0]
            # blobs ~3 mm across and ~8 mm along the sac: the texture's 0.5 / 1.8 mm kernel on a grid scaled down
            scaled = (spacing[0] * 0.5 / 3.0, spacing[1] * 0.5 / 3.0, spacing[2] * 1.8 / 8.0)
            flow = texture_3d(np.random.default_rng([params.seed, 0xF10]), tuple(b.stop - b.start for b in box),
                              scaled)
            view = signal[box]
            view[csf[box] & (flow > 1.0)] *= np.float32(0.25)
    ghost = params.acquisition.get("mri_ghosting", 0.0) if params.look.mri_physics else 0.0
    if ghost > 0:  # respiratory motion: faint copies of the image along the phase-encoding (AP) direction
        shift = signal.shape[1] // 3
        signal = signal + np.float32(ghost / 2) * (np.roll(signal, shift, axis=1) + np.roll(signal, -shift, axis=1))
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
