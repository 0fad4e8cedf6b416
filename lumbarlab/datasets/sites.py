"""Imaging sites of the phantom: one hospital's equipment and protocol plus the population it sees.

A real multi-centre study differs between sites in two ways, and a model trained at one site meets both at the
next: the *acquisition* (X-ray detector, grid, exposure and processing; CT kernel, dose and contrast phase; MRI
field strength, coil and slice thickness) and the *population* (age, body habitus, how common the disease is).
A :class:`Site` fixes the first through :data:`lumbarlab.phantom.realism.ACQUISITION_KEYS` and the imaging
fields of :class:`~lumbarlab.phantom.params.PhantomParams`, and the second by which anatomies it accepts (age and
subcutaneous fat drawn from the seed, so that degeneration still follows age at the population's rates) and how
often a spine slips. What varies between the patients of one site — positioning, collimation, the anatomy — is
still drawn from each case's seed.

The four sites of :data:`SITES` (values reasoned from the sources cited in :mod:`lumbarlab.phantom.realism` and
below; the phantom's own scale, not any vendor's):

| site | X-ray | CT | MRI | population |
| --- | --- | --- | --- | --- |
| ``hospital`` | flat panel, 10:1 grid, standard processing | standard kernel, 1 mm, 120 kVp, portal | 1.5 T, 4 mm | all adult ages, 50 % slips (a study set enriched with cases) |
| ``community`` | storage phosphor (CR), no grid, low dose, flat gamma | soft kernel, 3 mm, half dose, native | low SNR, 5 mm | 55–85 years, 25 % slips |
| ``bariatric`` | grid, thick patients: few photons (0.3× the hospital's), much scatter | 140 kVp, 1.5× dose, 2 mm | 3 T-like: lower T1 contrast, strong bias field, 3 mm | fat 26–35 mm, 30–70 years, 35 % slips |
| ``vendor`` | another vendor's processing: strong equalisation, gamma 0.75, edge enhancement | bone kernel, arterial | 3 T-like: lower T1 contrast, 3 mm | as ``hospital`` |

Why these values: a grid cuts the scatter-to-primary ratio of a lateral lumbar view from 2–5 about five-fold
(Bushberg et al., *The Essential Physics of Medical Imaging*, ch. 7); storage-phosphor plates absorb and detect
fewer of the incident photons than caesium-iodide flat panels (their detective quantum efficiency is lower,
ibid.), here 0.4× the photons; CT noise falls with the square root of dose and slice thickness (ibid., ch. 10);
SNR grows about linearly with field strength while B1 inhomogeneity grows and T1 contrast shrinks at 3 T (Soher
et al., "A review of MR physics: 3T versus 1.5T", Magn Reson Imaging Clin N Am 2007); degenerative
spondylolisthesis is a disease of older people (11.5 % in a community CT sample, more with age; Kalichman et
al., Spine 2009). The fast lateral radiograph keeps a body width that does not depend on fat, so a heavy
population reaches the radiograph only through the site's photon count, exposure and scatter — the values a
thick patient gives — and never through the fat itself. Both 3 T-like sites have ``mri_contrast`` below 1
(vendor 0.9, bariatric 0.85), as T1 contrast shrinks at 3 T.

Example:
    >>> sorted(SITES)
    ['bariatric', 'community', 'hospital', 'vendor']
    >>> SITES["community"].acquisition["xray_grid"], SITES["community"].slip_prevalence
    (False, 0.25)
    >>> p = site_params(SITES["community"], 1, seed=0)[0]
    >>> 55 <= p.age <= 85, p.acquisition["xray_grid"]
    (True, False)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from lumbarlab.datasets.xray import XraySplit, split_of_radiographs
from lumbarlab.errors import LumbarLabError

__all__ = ["Site", "SITES", "RANDOMISED_SCATTER", "site_params", "site_radiographs", "site_xrays", "site_cases", "randomised",
           "lumbosacral_split"]

#: How many anatomy seeds :func:`site_params` may try per case it keeps before it calls the population too narrow.
_TRIES_PER_CASE = 200


@dataclass(frozen=True)
class Site:
    """One imaging site: its acquisition settings and its population.

    Attributes:
        name: short name (a key of :data:`SITES` for the built-in sites).
        description: one line for tables and figures.
        acquisition: fixed values of :data:`lumbarlab.phantom.realism.ACQUISITION_KEYS` (``xray_grid``,
            ``xray_exposure``, ``ct_kernel`` …); the keys left out are drawn per case from its seed.
        xray_photons: photons per detector pixel before attenuation at exposure 1 (Poisson noise).
        ct_dose: CT dose relative to the phantom's reference (noise ∝ 1/√dose).
        mri_noise: Rician noise sigma as a fraction of the brightest tissue.
        mri_bias: amplitude of the smooth multiplicative MRI bias field.
        mri_slice_mm: sagittal slice thickness of the site's MRI protocol (mm), for
            :meth:`lumbarlab.phantom.Case.mri_sagittal`.
        age: (youngest, oldest) age in years of the patients the site sees.
        fat_mm: (least, most) subcutaneous fat over the back in mm — the phantom's body-mass-like measure.
        slip_prevalence: share of patients with a spondylolisthesis at L4 or L5.
        slip_percent: (smallest, largest) slip in % of the lower endplate (Meyerding) when there is one.
        domain_randomise: draw tissue contrasts at random per case (a training "site", not a real one).
    """

    name: str
    description: str = ""
    acquisition: dict = field(default_factory=dict)
    xray_photons: float = 5.0e5
    ct_dose: float = 1.0
    mri_noise: float = 0.03
    mri_bias: float = 0.15
    mri_slice_mm: float = 4.0
    age: tuple[float, float] = (20.0, 85.0)
    fat_mm: tuple[float, float] = (8.0, 35.0)
    slip_prevalence: float = 0.5
    slip_percent: tuple[float, float] = (15.0, 50.0)
    domain_randomise: bool = False

    def __post_init__(self) -> None:
        from lumbarlab.phantom.realism import ACQUISITION_KEYS

        unknown = sorted(set(self.acquisition) - set(ACQUISITION_KEYS))
        if unknown:
            raise LumbarLabError(f"site {self.name!r}: unknown acquisition value(s) {unknown}; "
                                 f"choose from lumbarlab.phantom.realism.ACQUISITION_KEYS.")
        if not 0.0 <= self.slip_prevalence <= 1.0:
            raise LumbarLabError(f"site {self.name!r}: slip_prevalence must lie in [0, 1], got {self.slip_prevalence}.")
        for label, (lo, hi) in (("age", self.age), ("fat_mm", self.fat_mm), ("slip_percent", self.slip_percent)):
            if not lo <= hi:
                raise LumbarLabError(f"site {self.name!r}: {label} must be (low, high) with low <= high, got {(lo, hi)}.")
        if self.mri_slice_mm <= 0:
            raise LumbarLabError(f"site {self.name!r}: mri_slice_mm must be > 0, got {self.mri_slice_mm}.")

    def replace(self, **changes) -> Site:
        """A copy with some fields changed (validated again); ``acquisition`` changes merge into the site's.

        Example:
            >>> SITES["hospital"].replace(name="h-nogrid", acquisition={"xray_grid": False}).acquisition["xray_grid"]
            False
        """
        if "acquisition" in changes:
            changes = {**changes, "acquisition": {**self.acquisition, **changes["acquisition"]}}
        return dataclasses.replace(self, **changes)

    def accepts(self, age: float, fat_mm: float) -> bool:
        """Whether a patient of ``age`` years with ``fat_mm`` of subcutaneous fat belongs to this site's population.

        Example:
            >>> SITES["community"].accepts(70.0, 20.0), SITES["community"].accepts(40.0, 20.0)
            (True, False)
        """
        return self.age[0] <= age <= self.age[1] and self.fat_mm[0] <= fat_mm <= self.fat_mm[1]


def randomised(site: Site, name: str = "randomised") -> Site:
    """A training site for domain randomisation (Tobin et al., IROS 2017; SynthSeg, Billot et al., Med Image Anal
    2023): ``site``'s population, but every acquisition value drawn per case from the phantom's clinical range
    (:func:`lumbarlab.phantom.realism.draw_acquisition`), the photon count log-uniform over 0.1–2× the site's and
    tissue contrasts drawn at random (``domain_randomise``). The scatter-to-primary ratio is drawn wider than the
    clinical default — :data:`RANDOMISED_SCATTER`, 0.3–1.6 with a grid and 2–5 without — so that a thick patient's
    scatter behind a grid (the bariatric site's 1.4) lies inside what randomisation covers.

    Example:
        >>> r = randomised(SITES["hospital"])
        >>> r.acquisition, r.domain_randomise, r.slip_prevalence
        ({}, True, 0.5)
    """
    return dataclasses.replace(site, name=name, acquisition={}, domain_randomise=True,
                               description=f"{site.name}'s population, every acquisition value and tissue contrast at random")


#: Range of the scatter-to-primary ratio a :func:`randomised` site draws per case: (with grid, without grid).
RANDOMISED_SCATTER = ((0.3, 1.6), (2.0, 5.0))

_HOSPITAL = Site(
    "hospital", "university hospital: flat-panel DR with grid; CT standard kernel; 1.5 T MRI",
    acquisition={"xray_grid": True, "xray_scatter_ratio": 0.7, "xray_exposure": 1.0, "xray_kvp": 85.0,
                 "xray_sid_mm": 1100.0, "xray_oid_mm": 200.0, "xray_equalisation": 0.80, "xray_gamma": 1.0,
                 "xray_sharpen": 0.4, "xray_heel": 0.0,
                 "ct_kernel": "standard", "ct_slice_mm": 1.0, "ct_kvp": 120.0, "ct_phase": "portal",
                 "mri_contrast": 1.0, "mri_coil_falloff_mm": 180.0},
    xray_photons=5.0e5, ct_dose=1.0, mri_noise=0.03, mri_bias=0.15, mri_slice_mm=4.0,
    age=(20.0, 85.0), fat_mm=(8.0, 35.0), slip_prevalence=0.5)

#: The built-in sites (see the module docstring for the reasons behind each value).
SITES: dict[str, Site] = {
    "hospital": _HOSPITAL,
    "community": Site(
        "community", "community clinic: CR plates without grid at low dose; CT soft 3 mm half dose; older MRI",
        acquisition={"xray_grid": False, "xray_scatter_ratio": 3.5, "xray_exposure": 0.7, "xray_kvp": 90.0,
                     "xray_sid_mm": 1000.0, "xray_oid_mm": 200.0, "xray_equalisation": 0.70, "xray_gamma": 1.25,
                     "xray_sharpen": 0.0, "xray_heel": 0.1,
                     "ct_kernel": "soft", "ct_slice_mm": 3.0, "ct_kvp": 100.0, "ct_phase": "native",
                     "mri_contrast": 0.9, "mri_coil_falloff_mm": 140.0},
        xray_photons=2.0e5, ct_dose=0.5, mri_noise=0.05, mri_bias=0.2, mri_slice_mm=5.0,
        age=(55.0, 85.0), fat_mm=(8.0, 35.0), slip_prevalence=0.25),
    "bariatric": Site(
        "bariatric", "bariatric centre: thick patients (few photons, much scatter) at 95 kVp; CT 140 kVp; 3 T MRI",
        acquisition={"xray_grid": True, "xray_scatter_ratio": 1.4, "xray_exposure": 0.5, "xray_kvp": 95.0,
                     "xray_sid_mm": 1100.0, "xray_oid_mm": 250.0, "xray_equalisation": 0.85, "xray_gamma": 0.9,
                     "xray_sharpen": 0.3, "xray_heel": -0.1,
                     "ct_kernel": "standard", "ct_slice_mm": 2.0, "ct_kvp": 140.0, "ct_phase": "portal",
                     "mri_contrast": 0.85, "mri_coil_falloff_mm": 120.0},
        xray_photons=1.5e5, ct_dose=1.5, mri_noise=0.02, mri_bias=0.35, mri_slice_mm=3.0,
        age=(30.0, 70.0), fat_mm=(26.0, 35.0), slip_prevalence=0.35),
    "vendor": _HOSPITAL.replace(
        name="vendor", description="hospital's population on another vendor: strong equalisation, gamma 0.75, "
                                   "edge enhancement; CT bone kernel, arterial; 3 T MRI",
        acquisition={"xray_exposure": 1.2, "xray_equalisation": 0.92, "xray_gamma": 0.75, "xray_sharpen": 0.8,
                     "xray_heel": 0.15, "ct_kernel": "bone", "ct_phase": "arterial", "mri_contrast": 0.9},
        mri_noise=0.015, mri_bias=0.3, mri_slice_mm=3.0),
}


def site_params(site: Site, n: int, seed: int, population: Site | None = None) -> list:
    """``n`` :class:`~lumbarlab.phantom.params.PhantomParams` of patients of ``site`` (or of ``population``, imaged
    with ``site``'s acquisition).

    Anatomy seeds are tried from ``seed`` upwards and kept when the age and fat drawn from them fall in the site's
    ranges (so a site of older people also has their degeneration); each kept case slips with probability
    ``slip_prevalence`` (at L4 or L5, by ``slip_percent``), drawn from a generator of ``seed``. Calls with seed
    ranges far apart share no anatomy.

    Args:
        site: the site.
        n: number of cases (≥ 1).
        seed: first anatomy seed tried (≥ 0).
        population: the site whose population (ages, fat, slip rate and sizes) the patients come from; default
            ``site``. With the same ``population`` and ``seed``, two sites image the same patients with the same
            slips — a pure acquisition shift.

    Returns:
        A list of ``n`` parameters; their ``seed`` fields are the anatomy seeds used.

    Example:
        >>> ps = site_params(SITES["bariatric"], 2, seed=10)
        >>> all(26 <= p.fat_thickness <= 35 and p.acquisition["xray_exposure"] == 0.5 for p in ps)
        True
        >>> same = site_params(SITES["vendor"], 2, seed=10, population=SITES["bariatric"])
        >>> [p.seed for p in same] == [p.seed for p in ps], [p.slip for p in same] == [p.slip for p in ps]
        (True, True)
    """
    from lumbarlab.phantom.params import sample_params

    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    if seed < 0:
        raise LumbarLabError(f"seed must be >= 0, got {seed}.")
    pop = site if population is None else population
    rng = np.random.default_rng([int(seed), 0x517E])
    out, anatomy = [], int(seed)
    while len(out) < n:
        if anatomy - seed > _TRIES_PER_CASE * n:
            raise LumbarLabError(f"site {pop.name!r}: too few anatomies fit age {pop.age} and fat {pop.fat_mm}; "
                                 "widen the ranges.")
        drawn = sample_params(anatomy)
        if pop.accepts(drawn.age, drawn.fat_thickness):
            slip = {}
            if rng.random() < pop.slip_prevalence:
                slip = {str(rng.choice(["L4", "L5"])): float(rng.uniform(*pop.slip_percent))}
            out.append(sample_params(anatomy, slip=slip, acquisition=dict(site.acquisition),
                                     xray_photons=site.xray_photons, ct_dose=site.ct_dose, mri_noise=site.mri_noise,
                                     mri_bias=site.mri_bias, domain_randomise=site.domain_randomise))
        anatomy += 1
    if site.domain_randomise:  # the photon count too: 0.1–2× the site's, log-uniform, and a wider scatter range
        draws = np.random.default_rng([int(seed), 0xD0]).uniform(size=(len(out), 2))
        out = [p.replace(xray_photons=float(site.xray_photons * np.exp(np.log(0.1) + u * np.log(20.0))),
                         acquisition={**p.acquisition, "xray_scatter_ratio": float(
                             np.interp(v, [0, 1], RANDOMISED_SCATTER[0 if p.acquisition["xray_grid"] else 1]))})
               for p, (u, v) in zip(out, draws, strict=True)]
    return out


def site_radiographs(site: Site, n: int, seed: int, size: int = 128, population: Site | None = None) -> Iterator:
    """Yield ``n`` lateral radiographs (:class:`lumbarlab.volume.Radiograph`) of ``site``'s patients
    (:func:`site_params`; of ``population``'s patients if given), ``size``² pixels over 230 mm; each one's
    ``truth`` also holds ``site``, ``population``, the full
    ``acquisition`` it was taken with, ``xray_photons``, ``age`` and ``fat_mm``. About 10 ms per 128² image.

    Example:
        >>> r = next(site_radiographs(SITES["community"], 1, seed=0, size=64))
        >>> r.image.shape, r.truth["site"], r.truth["acquisition"]["xray_grid"]
        ((64, 64), 'community', False)
    """
    from lumbarlab.phantom.fast2d import lateral_radiograph

    for params in site_params(site, n, seed, population):
        r = lateral_radiograph(params, size=size)
        r.truth.update(site=site.name, population=(population or site).name, acquisition=dict(params.acquisition), xray_photons=params.xray_photons,
                       age=params.age, fat_mm=params.fat_thickness)
        yield r


def site_xrays(site: Site, n: int, seed: int, size: int = 128, population: Site | None = None) -> XraySplit:
    """``n`` radiographs of ``site`` as an :class:`~lumbarlab.datasets.xray.XraySplit` — interchangeable with
    :func:`~lumbarlab.datasets.xray.phantom_xrays` and :func:`~lumbarlab.datasets.xray.fetched_xrays`, so a model
    trained on one site is tested on another (or on real data) with the same code.

    Args:
        site: the site.
        n: number of images.
        seed: first anatomy seed tried (keep train and test ranges far apart).
        size: image side in pixels (230 mm field of view).
        population: image these patients (another site's population) with ``site``'s acquisition; default
            ``site``'s own (see :func:`site_params`).

    Example:
        >>> split = site_xrays(SITES["hospital"], 2, seed=0, size=64)
        >>> split.images.shape, split.images.dtype.name, split.labels.dtype.name
        ((2, 64, 64), 'float32', 'int64')
    """
    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    return split_of_radiographs(site_radiographs(site, n, seed, size, population), n, size)


def site_cases(site: Site, n: int, seed: int, shape: tuple[int, int, int] = (64, 64, 80), spacing: float = 2.0,
               modalities: tuple[str, ...] = ("ct", "t2")) -> list:
    """``n`` 3D phantom cases (:class:`lumbarlab.phantom.Case`) of ``site``: CT with its kernel, dose, slice
    thickness and phase, MRI with its noise, bias field and contrast; ``truth["acquisition"]`` records them. Take
    the site's thick sagittal MRI slices with ``case.mri_sagittal("T2", site.mri_slice_mm)``. Each case's ``truth``
    also holds ``site``, ``acquisition``, ``ct_dose``, ``mri_noise`` and ``mri_bias``.

    Example:
        >>> case = site_cases(SITES["community"], 1, seed=0, shape=(32, 32, 40), spacing=4.0, modalities=("ct",))[0]
        >>> case.ct.shape, case.truth["acquisition"]["ct_kernel"]
        ((32, 32, 40), 'soft')
    """
    from lumbarlab.phantom import make_case

    cases = [make_case(p, shape=shape, spacing=spacing, modalities=modalities) for p in site_params(site, n, seed)]
    for case in cases:
        p = case.params
        case.truth.update(site=site.name, acquisition=dict(p.acquisition), ct_dose=p.ct_dose, mri_noise=p.mri_noise,
                          mri_bias=p.mri_bias)
    return cases


def lumbosacral_split(split: XraySplit, size: int = 64, side_mm: float = 140.0,
                      offset_mm: tuple[float, float] = (-22.0, -40.0), jitter_mm: float = 5.0,
                      seed: int = 0) -> XraySplit:
    """Square crops of L4, L5 and the top of S1 — where nearly every spondylolisthesis is — placed so that the
    crop's framing says nothing about the slip: a fixed ``side_mm`` square whose centre lies a fixed ``offset_mm``
    (x, y; anterior is −x, superior is −y) from the midpoint of S1's superior endplate, moved by a random jitter of
    up to ``jitter_mm`` in each direction. S1 does not move when L4 or L5 slips over it, and neither the size nor
    the offset depends on the case, so only the pixels — L4 and L5 standing forward of S1 — carry the slip. (A box
    fitted around all the L4–S1 corners, as an earlier version did, widens with the slip: its aspect ratio alone
    separates slipped from normal spines with an AUC near 0.98; ``tests/test_sites.py`` checks that this crop's
    geometry does not.)

    The S1 landmarks come from the phantom's truth or the annotation of converted real data; they stand for a
    localisation step (a detector, or a landmark model such as lesson 05's), which in deployment would supply them.
    Masks are cropped with the images (nearest neighbour) and the landmarks moved into the crop's pixels.

    Args:
        split: radiographs with their (22, 2) corner landmarks (landmarks 20–21: S1's superior endplate).
        size: side of each crop in pixels (bilinear resampling).
        side_mm: side of each crop in mm (the default holds L4–S1 of every phantom spine with the jitter). With
            the defaults a crop runs past the radiograph's lower edge in about 7–18 % of phantom cases (most for
            the bariatric population), by under 13 mm; edge pixels are repeated there, and how far a crop runs
            over does not predict the slip (AUC 0.42–0.51 in 160 cases per site).
        offset_mm: the crop centre relative to the S1 endplate midpoint, in mm (x, y).
        jitter_mm: largest random shift of the crop in each direction, in mm (uniform, per case; 0 for none).
        seed: seed of the jitter (use different seeds for training and test splits if you like; the jitter is
            independent of the label either way).

    Returns:
        An :class:`~lumbarlab.datasets.xray.XraySplit` of (N, size, size) crops (superior at the top, anterior on
        the left) with spacing ``side_mm / size`` in both directions.

    Example:
        >>> crops = lumbosacral_split(site_xrays(SITES["hospital"], 1, seed=0, size=64), size=32)
        >>> crops.images.shape, crops.spacing, bool(0 <= crops.corners[0, 12:].min() and crops.corners[0, 12:].max() < 32)
        ((1, 32, 32), (4.375, 4.375), True)
    """
    from scipy import ndimage

    if size < 8 or side_mm <= 0 or jitter_mm < 0:
        raise LumbarLabError(f"crops need size >= 8, side_mm > 0 and jitter_mm >= 0, got {size}, {side_mm} and "
                             f"{jitter_mm}.")
    n = len(split)
    images = np.empty((n, size, size), np.float32)
    masks = np.zeros((n, size, size), np.uint8)
    corners = np.empty_like(split.corners)
    rng = np.random.default_rng([int(seed), 0x5C1])
    mm = np.array([split.spacing[1], split.spacing[0]], dtype=float)  # (x, y) mm per source pixel
    side = np.asarray(side_mm / mm)  # (x, y) crop side in source pixels
    for i in range(n):
        s1 = split.corners[i, 20:22].mean(0)  # the midpoint of S1's superior endplate, source pixels (x, y)
        centre = s1 + (np.asarray(offset_mm) + rng.uniform(-jitter_mm, jitter_mm, 2)) / mm
        left, top = centre - side / 2.0
        # crop pixel j samples the original at left + (j + 0.5) · side / size, in pixel-centre coordinates
        unit = (np.arange(size) + 0.5) / size
        rows, cols = np.meshgrid(top + unit * side[1] - 0.5, left + unit * side[0] - 0.5, indexing="ij")
        images[i] = ndimage.map_coordinates(split.images[i], [rows, cols], order=1, mode="nearest")
        if split.masks.shape[1:] == split.images.shape[1:]:
            masks[i] = ndimage.map_coordinates(split.masks[i], [rows, cols], order=0, mode="constant")
        corners[i] = (split.corners[i] - [left - 0.5, top - 0.5]) * (size / side) - 0.5
    spacing = (float(side_mm / size), float(side_mm / size))
    return XraySplit(images, split.slip.copy(), masks, corners.astype(np.float32), spacing, split.seeds.copy())
