"""Realism presets of the phantom: how much anatomy, texture and acquisition physics a case carries.

``"teaching"`` is the clean cartoon that explains one idea at a time: elliptic-cylinder bodies with flat
endplates, box-shaped posterior elements, white noise, a parallel-beam radiograph. ``"clinical"`` (the
default) adds what makes real images hard — concave endplates and waisted, kidney-shaped bodies, articular
processes, the iliac wings and the last ribs, bowel gas, trabecular texture, CT kernels and slice
thickness, a point-source radiograph with magnification, patient rotation, scatter, heel effect,
collimation and detector post-processing — with the per-case acquisition values drawn from the seed
(:func:`draw_acquisition`) and recorded in the case's truth.

Population values and where they come from:
    endplate concavity 1–2 mm at the centre (Wang et al., "Three-dimensional endplate morphology",
    Spine 2012); source–image distance 100–115 cm for lumbar radiographs and object–image distance
    15–25 cm (Bontrager's *Textbook of Radiographic Positioning*); scatter-to-primary ratio of a
    lateral lumbar view 2–5 without a grid, cut about five-fold by a 10:1 grid (Bushberg et al.,
    *The Essential Physics of Medical Imaging*, ch. 7); heel effect ±15 % across the field (ibid.);
    CT kernels soft/standard/bone and slice thickness 0.6–3 mm of clinical abdominal protocols.

Example:
    >>> preset("teaching").cone_beam, preset("clinical").cone_beam
    (False, True)
    >>> acq = draw_acquisition(5, "clinical")
    >>> 950 <= acq["xray_sid_mm"] <= 1150 and acq["ct_kernel"] in CT_KERNELS
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = ["Realism", "REALISMS", "preset", "draw_acquisition", "CT_KERNELS", "CT_PHASES", "ACQUISITION_KEYS"]

CT_KERNELS = ("soft", "standard", "bone")
CT_PHASES = ("native", "arterial", "portal")


@dataclass(frozen=True)
class Realism:
    """Switches of one preset (see the module docstring). Each is a whole feature, on or off."""

    name: str
    body_shape: bool  # concave endplates, waist, kidney-shaped outline
    posterior_detail: bool  # articular processes and pars, tapered spinous processes
    surroundings: bool  # iliac wings, ribs on T12/T11, bowel gas, kidneys, aorta and IVC
    texture: bool  # trabecular texture in CT/MRI and the fast radiographs
    ct_physics: bool  # kernel noise texture, slice thickness, kVp and contrast phase
    mri_physics: bool  # posterior-coil fall-off, scanner contrast variation
    cone_beam: bool  # point-source radiographs with magnification and patient rotation
    detector: bool  # scatter, grid, heel effect, collimation, exposure, post-processing


REALISMS: dict[str, Realism] = {
    "teaching": Realism("teaching", False, False, False, False, False, False, False, False),
    "clinical": Realism("clinical", True, True, True, True, True, True, True, True),
}

#: Every acquisition value a clinical case carries; a user may set any of them through
#: ``PhantomParams.acquisition`` (the rest are drawn from the seed).
ACQUISITION_KEYS = (
    "xray_sid_mm", "xray_oid_mm", "xray_rotation_deg", "xray_tilt_deg", "xray_exposure", "xray_kvp",
    "xray_grid", "xray_scatter_ratio", "xray_heel", "xray_collimation", "xray_equalisation", "xray_gamma",
    "xray_sharpen", "ct_kernel", "ct_slice_mm", "ct_kvp", "ct_phase", "mri_coil_falloff_mm",
    "mri_contrast", "gas_pockets", "texture_seed", "mri_ghosting", "mri_flow_voids",
)


def preset(name: str) -> Realism:
    """The :class:`Realism` called ``name`` (``"teaching"`` or ``"clinical"``).

    Example:
        >>> preset("clinical").surroundings, preset("teaching").texture
        (True, False)
    """
    try:
        return REALISMS[name]
    except KeyError:
        raise LumbarLabError(f"realism must be one of {sorted(REALISMS)}, got {name!r}.") from None


def draw_acquisition(seed: int, realism: str) -> dict:
    """Per-case acquisition values for ``realism``, reproducible from ``seed`` (empty for ``"teaching"``).

    Radiograph: source–image distance (mm), object–image distance of the mid-sagittal plane (mm), patient
    rotation about the vertical axis and tilt about the AP axis (degrees; positioning error of a few
    degrees is routine), relative exposure (log-uniform 0.5–2), kVp 75–95, anti-scatter grid (85 % of
    departments), scatter-to-primary ratio, heel-effect amplitude, collimation margins (fractions of the
    field), equalisation strength, display gamma and edge enhancement of the detector's processing. CT:
    kernel, slice thickness (mm), kVp, contrast phase. MRI: posterior-coil fall-off length (mm), a
    per-scanner contrast factor, the amplitude of motion ghosts (0 in most studies) and CSF flow voids on T2.
    Also the number of bowel gas pockets and a texture seed.

    Example:
        >>> draw_acquisition(3, "teaching")
        {}
        >>> sorted(draw_acquisition(3, "clinical")) == sorted(ACQUISITION_KEYS)
        True
    """
    if not preset(realism).cone_beam:
        return {}
    rng = np.random.default_rng([int(seed), 0xAC9])
    grid = bool(rng.random() < 0.85)
    return {
        "xray_sid_mm": float(rng.uniform(1000.0, 1150.0)),
        "xray_oid_mm": float(rng.uniform(150.0, 250.0)),
        "xray_rotation_deg": float(np.clip(rng.normal(0.0, 3.0), -8.0, 8.0)),
        "xray_tilt_deg": float(np.clip(rng.normal(0.0, 2.0), -6.0, 6.0)),
        "xray_exposure": float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))),
        "xray_kvp": float(rng.uniform(75.0, 95.0)),
        "xray_grid": grid,
        "xray_scatter_ratio": float(rng.uniform(2.0, 5.0) * (0.2 if grid else 1.0)),
        "xray_heel": float(rng.uniform(-0.15, 0.15)),
        "xray_collimation": [float(v) for v in rng.uniform(0.0, 0.08, size=4)],
        "xray_equalisation": float(rng.uniform(0.7, 0.92)),
        "xray_gamma": float(np.exp(np.clip(rng.normal(0.0, 0.15), -0.3, 0.3))),
        "xray_sharpen": float(rng.uniform(0.0, 0.8)),
        "ct_kernel": str(rng.choice(CT_KERNELS, p=[0.5, 0.2, 0.3])),
        "ct_slice_mm": float(rng.choice([1.0, 1.25, 2.0, 3.0], p=[0.4, 0.2, 0.2, 0.2])),
        "ct_kvp": float(rng.choice([100.0, 120.0, 140.0], p=[0.25, 0.6, 0.15])),
        "ct_phase": str(rng.choice(CT_PHASES, p=[0.35, 0.15, 0.5])),
        "mri_coil_falloff_mm": float(rng.uniform(120.0, 250.0)),
        "mri_contrast": float(np.clip(rng.normal(1.0, 0.12), 0.7, 1.3)),
        "gas_pockets": int(rng.integers(2, 9)),
        "texture_seed": int(rng.integers(0, 2**31 - 1)),
        # drawn last, so that adding it kept every earlier value of a seed: motion ghosts in 15 % of studies
        "mri_ghosting": float(rng.uniform(0.04, 0.12)) if rng.random() < 0.15 else 0.0,
        # CSF pulsation leaves dark flow voids in the thecal sac on T2 in some studies
        "mri_flow_voids": bool(rng.random() < 0.25),
    }
