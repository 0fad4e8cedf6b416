"""Case parameters of the phantom: anatomy drawn from a seed, pathology set by the user.

Population means (mm, degrees) come from lumbar morphometry: vertebral body heights and
endplate sizes after Panjabi et al., "Human lumbar vertebrae: quantitative
three-dimensional anatomy", Spine 1992; disc heights after Koeller et al., Spine 1986;
segmental lordosis and sacral slope after Roussouly et al., Spine 2005.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.phantom.labels import DISCS, VERTEBRAE, parse_disc, parse_level
from lumbarlab.phantom.realism import ACQUISITION_KEYS, draw_acquisition, preset

__all__ = ["PhantomParams", "sample_params", "parse_level_value", "FRACTURE_TYPES"]

# Population means per vertebra (T12 … S1): body height, endplate half-width, half-depth (mm).
_BODY_HEIGHT = dict(zip(VERTEBRAE, (24.5, 25.5, 26.5, 27.0, 27.0, 26.5, 28.0), strict=True))
_HALF_WIDTH = dict(zip(VERTEBRAE, (19.5, 20.5, 21.5, 22.5, 23.5, 24.5, 24.5), strict=True))
_HALF_DEPTH = dict(zip(VERTEBRAE, (14.5, 15.0, 15.5, 16.0, 16.5, 17.0, 17.5), strict=True))
# Body wedge (anterior minus posterior height, mm); L5 is the lordotic vertebra.
_BODY_WEDGE = dict(zip(VERTEBRAE, (-1.0, 0.0, 0.0, 0.5, 1.0, 3.0, 0.0), strict=True))
# Discs T12-L1 … L5-S1: mid-disc height (mm) and sagittal wedge (degrees, lordotic > 0).
_DISC_HEIGHT = dict(zip(DISCS, (8.0, 9.0, 10.0, 11.0, 11.5, 11.0), strict=True))
_DISC_WEDGE = dict(zip(DISCS, (1.0, 3.0, 5.0, 7.0, 10.0, 13.0), strict=True))

FRACTURE_TYPES = ("wedge", "biconcave", "crush")


@dataclass
class PhantomParams:
    """Everything that defines one phantom case. Lengths in mm, angles in degrees.

    Anatomy (drawn by :func:`sample_params` from the seed):
        scale: overall size factor (1 = population mean).
        level_scale: per-vertebra size factors around ``scale``.
        disc_height: mid-disc height per disc before degeneration.
        disc_wedge: sagittal wedge per disc (lordotic positive).
        sacral_slope: angle of the S1 endplate to the horizontal.
        canal_ap: sagittal (AP) diameter of the spinal canal.
        fat_thickness: subcutaneous fat over the back.

    Pathology (defaults: none):
        slip: vertebra → anterior slip in % of the lower endplate (Meyerding), e.g. {"L4": 30}.
        cobb: lumbar scoliosis Cobb angle (T12–L5 C-curve); ``scoliosis_side`` "left"/"right" convexity.
        fracture: vertebra → height loss in %; ``fracture_type`` wedge (anterior), biconcave
            (middle) or crush (posterior and all heights).
        bmd: trabecular bone density in HU (CT); below 110 HU reads as osteoporosis
            (Pickhardt et al., Ann Intern Med 2013).
        pfirrmann: disc → Pfirrmann grade 1–5 (Pfirrmann et al., Spine 2001).
        herniation: disc → posterior protrusion of the nucleus in mm.
        stenosis: canal AP diameter in mm at every level (overrides ``canal_ap``), e.g. 8.
        spondylolysis: vertebrae with a pars interarticularis defect (both sides), e.g. ["L5"]; drawn only
            with ``realism="clinical"`` (a gap in the pars, visible on oblique and lateral views).
        osteophytes: anterior rim spurs in mm per vertebra (clinical realism), e.g. {"L4": 4}.
        transitional: ``"none"`` or ``"sacralised_L5"`` — a lumbosacral transitional vertebra (Castellvi II/III:
            L5's transverse processes broadened down to the sacral ala, a hypoplastic L5-S1 disc at half
            height); clinical cases draw it in 8 % (transitional vertebrae in 4–30 % of people, Konin & Walz,
            AJNR 2010). Lumbarised S1 and six lumbar vertebrae are not modelled.
        age: years (20–90); clinical cases draw it (20–85) and the signs below at its population rates
            (Brinjikji et al., AJNR 2015); marrow fat (T1 signal) rises with it.
        facet_arthrosis: vertebrae whose articular processes are hypertrophic, e.g. ["L4", "L5"].
        modic: disc → Modic type (1 oedema: T1 dark, T2 bright; 2 fat: T1 and T2 bright) of the marrow next
            to both its endplates (Modic et al., Radiology 1988).
        sclerosis: discs whose neighbouring endplates are sclerotic (dense on CT and radiographs).
        vacuum: discs with gas in the nucleus (vacuum phenomenon).
        schmorl: vertebrae with a Schmorl node (disc herniated through the superior endplate).
        rib_pairs: 12, or 11 (T12 carries no rib) or 13 (a lumbar rib on L1): the transitional anatomy that
            makes counting from the last rib go wrong. Clinical cases draw 11 pairs at 5 % and 13 at 1 %
            (11 pairs in 5–8 % of people, Radiopaedia "Eleven pairs of ribs"; lumbar ribs ~1 %).

    Imaging:
        ct_noise: CT noise standard deviation in HU at the reference dose.
        ct_dose: dose relative to the reference (noise scales as 1/sqrt(dose)).
        mri_noise: Rician noise sigma as a fraction of the brightest tissue.
        mri_bias: amplitude of the smooth multiplicative MRI bias field.
        xray_photons: photons per detector pixel before attenuation (Poisson noise).
        realism: ``"clinical"`` (default: anatomy, texture and acquisition physics of real scans) or
            ``"teaching"`` (the clean cartoon); see :mod:`lumbarlab.phantom.realism`.
        acquisition: per-case acquisition values of a clinical case (:data:`ACQUISITION_KEYS`); those not
            given are drawn from the seed. Empty for ``"teaching"``.
        domain_randomise: draw tissue intensities, contrasts and noise at random per case (in the spirit of
            SynthSeg, Billot et al., Med Image Anal 2023) — for training sets, never the realistic default.
    """

    seed: int = 0
    scale: float = 1.0
    level_scale: dict[str, float] = field(default_factory=lambda: {v: 1.0 for v in VERTEBRAE})
    disc_height: dict[str, float] = field(default_factory=lambda: dict(_DISC_HEIGHT))
    disc_wedge: dict[str, float] = field(default_factory=lambda: dict(_DISC_WEDGE))
    sacral_slope: float = 40.0
    canal_ap: float = 16.0
    fat_thickness: float = 20.0
    # pathology
    slip: dict[str, float] = field(default_factory=dict)
    cobb: float = 0.0
    scoliosis_side: str = "left"
    fracture: dict[str, float] = field(default_factory=dict)
    fracture_type: str = "wedge"
    bmd: float = 180.0
    pfirrmann: dict[str, int] = field(default_factory=lambda: {d: 1 for d in DISCS})
    herniation: dict[str, float] = field(default_factory=dict)
    stenosis: float | None = None
    # imaging
    ct_noise: float = 12.0
    ct_dose: float = 1.0
    mri_noise: float = 0.03
    mri_bias: float = 0.15
    xray_photons: float = 5.0e5
    intensity_jitter: dict[str, float] = field(default_factory=dict)
    spondylolysis: list[str] = field(default_factory=list)
    osteophytes: dict[str, float] = field(default_factory=dict)
    rib_pairs: int = 12
    transitional: str = "none"
    age: float = 45.0
    facet_arthrosis: list[str] = field(default_factory=list)
    modic: dict[str, int] = field(default_factory=dict)
    sclerosis: list[str] = field(default_factory=list)
    vacuum: list[str] = field(default_factory=list)
    schmorl: list[str] = field(default_factory=list)
    realism: str = "clinical"
    acquisition: dict = field(default_factory=dict)
    domain_randomise: bool = False

    def __post_init__(self) -> None:
        self.validate()

    # --- validation -------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`LumbarLabError` for parameters no spine can have."""
        self.slip = {parse_level(k): float(v) for k, v in self.slip.items()}
        for lvl, pct in self.slip.items():
            if lvl == "S1":
                raise LumbarLabError("a slip is named by the upper vertebra (L5 slips on S1); S1 cannot slip.")
            if not 0.0 <= pct <= 100.0:
                raise LumbarLabError(
                    f"slip at {lvl} is {pct:g} %; the phantom models Meyerding grades I–IV (0–100 %)."
                )
        if not 0.0 <= self.cobb <= 60.0:
            raise LumbarLabError(f"Cobb angle {self.cobb:g}° is outside 0–60°, the range the phantom models.")
        if self.scoliosis_side not in ("left", "right"):
            raise LumbarLabError(f"scoliosis_side must be 'left' or 'right', got {self.scoliosis_side!r}.")
        self.fracture = {parse_level(k): float(v) for k, v in self.fracture.items()}
        for lvl, pct in self.fracture.items():
            if not 0.0 <= pct <= 80.0:
                raise LumbarLabError(f"height loss at {lvl} is {pct:g} %; use 0–80 %.")
        if self.fracture_type not in FRACTURE_TYPES:
            raise LumbarLabError(f"fracture_type must be one of {FRACTURE_TYPES}, got {self.fracture_type!r}.")
        if not 20.0 <= self.bmd <= 400.0:
            raise LumbarLabError(f"bmd {self.bmd:g} HU is outside 20–400 HU (trabecular bone).")
        self.pfirrmann = {**{d: 1 for d in DISCS}, **{parse_disc(k): int(v) for k, v in self.pfirrmann.items()}}
        for disc, grade in self.pfirrmann.items():
            if grade not in (1, 2, 3, 4, 5):
                raise LumbarLabError(f"Pfirrmann grade at {disc} is {grade}; grades run from 1 to 5.")
        self.herniation = {parse_disc(k): float(v) for k, v in self.herniation.items()}
        for disc, mm in self.herniation.items():
            if not 0.0 <= mm <= 12.0:
                raise LumbarLabError(f"herniation at {disc} is {mm:g} mm; use 0–12 mm.")
        if self.stenosis is not None and not 4.0 <= self.stenosis <= 25.0:
            raise LumbarLabError(f"canal AP diameter {self.stenosis:g} mm is outside 4–25 mm.")
        if not 0.5 <= self.scale <= 1.5:
            raise LumbarLabError(f"scale {self.scale:g} is outside 0.5–1.5.")
        if not 10.0 <= self.sacral_slope <= 70.0:
            raise LumbarLabError(f"sacral slope {self.sacral_slope:g}° is outside 10–70°.")
        self.spondylolysis = sorted({parse_level(k) for k in self.spondylolysis})
        if "S1" in self.spondylolysis:
            raise LumbarLabError("spondylolysis is a defect of a lumbar pars (T12–L5); S1 has none.")
        self.osteophytes = {parse_level(k): float(v) for k, v in self.osteophytes.items()}
        for lvl, mm in self.osteophytes.items():
            if not 0.0 <= mm <= 8.0:
                raise LumbarLabError(f"osteophyte at {lvl} is {mm:g} mm; use 0–8 mm.")
        if not 18.0 <= self.age <= 95.0:
            raise LumbarLabError(f"age {self.age:g} is outside 18–95 years (adult spines).")
        self.facet_arthrosis = sorted({parse_level(k) for k in self.facet_arthrosis})
        self.schmorl = sorted({parse_level(k) for k in self.schmorl})
        self.modic = {parse_disc(k): int(v) for k, v in self.modic.items()}
        if any(t not in (1, 2) for t in self.modic.values()):
            raise LumbarLabError(f"Modic types are 1 or 2, got {self.modic}.")
        self.sclerosis = sorted({parse_disc(k) for k in self.sclerosis})
        self.vacuum = sorted({parse_disc(k) for k in self.vacuum})
        if self.transitional not in ("none", "sacralised_L5"):
            extra = " (lumbarised S1 and six lumbar vertebrae are not modelled)" if "lumbar" in str(self.transitional) else ""
            raise LumbarLabError(f"transitional must be 'none' or 'sacralised_L5', got {self.transitional!r}{extra}.")
        if self.rib_pairs not in (11, 12, 13):
            raise LumbarLabError(f"rib_pairs is {self.rib_pairs}; the phantom models 11, 12 or 13 pairs.")
        look = preset(self.realism)
        unknown = set(self.acquisition) - set(ACQUISITION_KEYS)
        if unknown:
            raise LumbarLabError(f"unknown acquisition value(s) {sorted(unknown)}; choose from {ACQUISITION_KEYS}.")
        self.acquisition = {**draw_acquisition(self.seed, look.name), **self.acquisition} if look.cone_beam else {}
        if self.ct_dose <= 0 or self.ct_noise < 0 or self.mri_noise < 0 or self.xray_photons <= 0:
            raise LumbarLabError("noise levels must be >= 0 and dose / photon counts > 0.")

    # --- derived quantities -------------------------------------------------------------
    @property
    def look(self):
        """The :class:`lumbarlab.phantom.realism.Realism` switches of this case."""
        return preset(self.realism)

    @property
    def canal_diameter(self) -> float:
        """Canal AP diameter in mm after stenosis."""
        return float(self.stenosis) if self.stenosis is not None else self.canal_ap

    def body_height(self, level: str) -> float:
        return _BODY_HEIGHT[level] * self.scale * self.level_scale[level]

    def half_width(self, level: str) -> float:
        return _HALF_WIDTH[level] * self.scale * self.level_scale[level]

    def half_depth(self, level: str) -> float:
        return _HALF_DEPTH[level] * self.scale * self.level_scale[level]

    def body_wedge(self, level: str) -> float:
        return _BODY_WEDGE[level] * self.scale

    def disc_height_after_degeneration(self, disc: str) -> float:
        """Mid-disc height: Pfirrmann I–III keep it, IV loses a quarter, V collapses (Pfirrmann 2001)."""
        factor = {1: 1.0, 2: 1.0, 3: 0.92, 4: 0.72, 5: 0.45}[self.pfirrmann[disc]]
        if disc == "L5-S1" and self.transitional == "sacralised_L5":
            factor *= 0.5  # the hypoplastic disc of a transitional vertebra
        return self.disc_height[disc] * self.scale * factor

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> PhantomParams:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def sample_params(seed: int, lordosis: float | None = None, **pathology) -> PhantomParams:
    """Draw a healthy adult anatomy from ``seed``, then apply the given pathology fields.

    The same seed always gives the same anatomy; keyword arguments are any
    :class:`PhantomParams` field (``slip={"L4": 30}``, ``cobb=15``, ...).

    Args:
        seed: the anatomy's seed (≥ 0).
        lordosis: the L1–S1 lordosis in degrees (Cobb angle between the superior endplates of L1 and S1),
            reached by scaling the drawn disc wedges; 20–80°. Default: as drawn (about 35–60°). Fractures set
            afterwards change it by their wedge.
        pathology: :class:`PhantomParams` fields.

    Example:
        >>> p = sample_params(4, lordosis=60, slip={"L4": 20})
        >>> p.slip, round(sum(p.disc_wedge[d] for d in DISCS[1:]), 1)
        ({'L4': 20.0}, 52.4)
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LumbarLabError(f"seed must be a non-negative integer, got {seed!r}.")
    rng = np.random.default_rng([int(seed), 0x5B1E])
    scale = float(np.clip(rng.normal(1.0, 0.06), 0.88, 1.12))
    level_scale = {v: float(np.clip(rng.normal(1.0, 0.025), 0.93, 1.07)) for v in VERTEBRAE}
    disc_height = {d: float(h * np.clip(rng.normal(1.0, 0.07), 0.85, 1.15)) for d, h in _DISC_HEIGHT.items()}
    lordosis_factor = float(np.clip(rng.normal(1.0, 0.15), 0.7, 1.3))
    disc_wedge = {d: float(w * lordosis_factor + rng.normal(0, 0.5)) for d, w in _DISC_WEDGE.items()}
    sacral_slope = float(np.clip(40.0 * lordosis_factor ** 0.7 + rng.normal(0, 3), 25, 55))
    pfirrmann = {d: int(rng.choice([1, 2], p=[0.6, 0.4])) for d in DISCS}
    jitter = {k: float(rng.normal(0.0, 1.0)) for k in ("fat", "muscle", "disc", "cortical", "csf", "mri")}
    fields = dict(
        seed=int(seed),
        scale=scale,
        level_scale=level_scale,
        disc_height=disc_height,
        disc_wedge=disc_wedge,
        sacral_slope=sacral_slope,
        canal_ap=float(np.clip(rng.normal(16.0, 1.5), 13.0, 20.0)),
        fat_thickness=float(np.clip(rng.normal(20.0, 6.0), 8.0, 35.0)),
        bmd=float(np.clip(rng.normal(180.0, 25.0), 130.0, 260.0)),
        pfirrmann=pfirrmann,
        intensity_jitter=jitter,
    )
    if preset(pathology.get("realism", "clinical")).posterior_detail:
        # A separate stream, so that a seed's anatomy is the same in both presets.
        extra = np.random.default_rng([int(seed), 0xC11])
        # Spondylolysis in ~6 % of adults, at L5 in most (Kalichman et al., Spine 2009).
        fields["spondylolysis"] = ["L5" if extra.random() < 0.85 else "L4"] if extra.random() < 0.06 else []
        # Anterior osteophytes: a fifth of the lumbar levels of an adult population, 1–4 mm.
        fields["osteophytes"] = {v: float(extra.uniform(1.0, 4.0)) for v in VERTEBRAE[1:-1] if extra.random() < 0.2}
        draw = extra.random()
        fields["rib_pairs"] = 11 if draw < 0.05 else 13 if draw > 0.99 else 12
        fields.update(_degeneration(extra))
        fields["transitional"] = "sacralised_L5" if extra.random() < 0.08 else "none"
    if "pfirrmann" in pathology:
        pathology = dict(pathology)
        pathology["pfirrmann"] = {**fields["pfirrmann"], **{parse_disc(k): v for k, v in pathology["pfirrmann"].items()}}
    unknown = set(pathology) - {f.name for f in dataclasses.fields(PhantomParams)}
    if unknown:
        raise LumbarLabError(f"unknown phantom parameter(s) {sorted(unknown)}.")
    fields.update(pathology)
    if lordosis is not None:
        fields["disc_wedge"] = _wedges_for_lordosis(float(lordosis), fields)
    return PhantomParams(**fields)


# Prevalence of imaging signs in asymptomatic people by decade, 20s … 80s (Brinjikji et al., "Systematic
# literature review of imaging features of spinal degeneration in asymptomatic populations", AJNR 2015).
_DECADES = (20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0)
_DISC_DEGENERATION = (0.37, 0.52, 0.68, 0.80, 0.88, 0.93, 0.96)
_FACET_DEGENERATION = (0.04, 0.09, 0.18, 0.32, 0.50, 0.69, 0.83)
# Lower discs degenerate first and most (L4-L5 and L5-S1).
_LEVEL_WEIGHT = dict(zip(DISCS, (0.35, 0.45, 0.6, 0.75, 1.0, 1.0), strict=True))


def _degeneration(rng: np.random.Generator) -> dict:
    """Age and the signs of degeneration of one adult, at the population rates above: Pfirrmann grades
    (III–V more often with age and at the lower discs), facet arthrosis at L4/L5, and next to discs of grade
    IV–V Modic changes (35 %, type 2 in 60 % of them), endplate sclerosis (40 %) and, at grade V, a vacuum
    phenomenon (40 %); a Schmorl node in 15 % of people."""
    age = float(rng.uniform(20.0, 85.0))
    person = float(np.interp(age, _DECADES, _DISC_DEGENERATION))
    severe = 0.1 + 0.3 * (age - 20.0) / 65.0
    # Whether this person has any degenerated disc follows the review's per-person prevalence; if so, one of
    # the two lowest discs is, and each other disc is with half its level's weight.
    degenerated = rng.random() < person
    worst = str(rng.choice(["L4-L5", "L5-S1"]))
    pfirrmann = {}
    for disc in DISCS:
        if degenerated and (disc == worst or rng.random() < 0.5 * _LEVEL_WEIGHT[disc]):
            pfirrmann[disc] = int(rng.choice([3, 4, 5], p=[0.6 - severe, 0.4, severe]))
        else:
            pfirrmann[disc] = int(rng.choice([1, 2], p=[0.6, 0.4]) if age < 45 else rng.choice([1, 2], p=[0.3, 0.7]))
    facets = ["L4", "L5"] + (["L3"] if rng.random() < 0.5 else []) if rng.random() < np.interp(
        age, _DECADES, _FACET_DEGENERATION) else []
    modic, sclerosis, vacuum = {}, [], []
    for disc, grade in pfirrmann.items():
        if grade >= 4 and rng.random() < 0.35:
            modic[disc] = 2 if rng.random() < 0.6 else 1
        if grade >= 4 and rng.random() < 0.4:
            sclerosis.append(disc)
        if grade == 5 and rng.random() < 0.4:
            vacuum.append(disc)
    schmorl = [str(rng.choice(["L1", "L2", "L3", "L4"]))] if rng.random() < 0.15 else []
    return {"age": age, "pfirrmann": pfirrmann, "facet_arthrosis": sorted(facets), "modic": modic,
            "sclerosis": sclerosis, "vacuum": vacuum, "schmorl": schmorl}


def _wedges_for_lordosis(lordosis: float, fields: dict) -> dict[str, float]:
    """Disc wedges scaled so that the discs L1-L2 … L5-S1 and the bodies L1–L5 bend L1's superior endplate
    ``lordosis`` degrees from S1's (the chain of :func:`lumbarlab.phantom.anatomy.build_spine`)."""
    if not 20.0 <= lordosis <= 80.0:
        raise LumbarLabError(f"lordosis {lordosis:g}° is outside 20–80°, the range the phantom models.")
    probe = PhantomParams(**fields)
    bodies = sum(math.degrees(math.atan2(probe.body_wedge(n), 2 * probe.half_depth(n))) for n in VERTEBRAE[1:-1])
    lumbar = DISCS[1:]  # L1-L2 … L5-S1
    current = sum(probe.disc_wedge[d] for d in lumbar)
    k = (lordosis - bodies) / current
    return {d: w * (k if d in lumbar else 1.0) for d, w in probe.disc_wedge.items()}


def parse_level_value(text: str, kind: str = "level") -> tuple[str, float]:
    """Parse ``"L4:30"`` (or ``"L4-L5:4"`` with kind="disc") into (name, value)."""
    if ":" not in str(text):
        example = "L4-L5:4" if kind == "disc" else "L4:30"
        raise LumbarLabError(f"expected NAME:VALUE such as {example!r}, got {text!r}.")
    name, value = str(text).rsplit(":", 1)
    try:
        num = float(value)
    except ValueError:
        raise LumbarLabError(f"{value!r} in {text!r} is not a number.") from None
    if not math.isfinite(num):
        raise LumbarLabError(f"{value!r} in {text!r} is not a finite number.")
    return (parse_disc(name) if kind == "disc" else parse_level(name)), num
