"""CT datasets: phantom CT volumes and the intensity window CT networks take.

CT values are Hounsfield units, comparable between scanners (unlike MRI's): a fixed window maps them to
[0, 1] for a network, clipping air below and metal above.

Example:
    >>> normalize_ct(np.array([-1000.0, 500.0, 3000.0])).tolist()
    [0.0, 0.5, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarlab.datasets.volumes import VolumePair, phantom_volumes

__all__ = ["phantom_ct", "normalize_ct", "CT_WINDOW", "CT_SPINE_CLASSES", "ct_spine_pathology", "phantom_ct_spine", "ct_augment",
           "BoneDensitySplit", "phantom_bone_density", "dxa_t_score", "DENSITY_CLASSES", "DENSITY_WINDOW"]

#: HU window (low, high) for networks: air … dense cortical bone.
CT_WINDOW = (-1000.0, 2000.0)


def normalize_ct(image: np.ndarray, window: tuple[float, float] = CT_WINDOW) -> np.ndarray:
    """HU → [0, 1] through ``window`` (MONAI's ``ScaleIntensityRange`` with clipping)."""
    from monai.transforms import ScaleIntensityRange

    lo, hi = window
    scale = ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)
    return np.asarray(scale(np.array(image, dtype=np.float32)), dtype=np.float32)  # a copy: the input is kept


def phantom_ct(n: int, seed: int = 0, shape: tuple[int, int, int] = (96, 96, 120), spacing=1.5,
               **pathology) -> list[VolumePair]:
    """``n`` phantom CTs (HU) with their label maps: :func:`lumbarlab.datasets.volumes.phantom_volumes` for CT."""
    return phantom_volumes(n, seed, "ct", shape, spacing, **pathology)


#: Label values (VerSe) of the CT spine models, in class order 1, 2, … (0 is background): T12, L1–L5, sacrum.
CT_SPINE_CLASSES: tuple[int, ...] = (19, 20, 21, 22, 23, 24, 26)


def ct_spine_pathology(seed: int) -> dict:
    """The pathology of training case ``seed`` for the CT spine models, drawn from the seed so that every split
    mixes what a clinical CT shows: bone density 40–260 HU (osteoporotic to young), a compression fracture in
    30 % (15–50 % height loss, wedge/biconcave/crush, most often at T12–L1 as in the population), a slip of L4 or
    L5 in 20 % (8–40 %), a scoliosis in 20 % (5–25°), low dose (¼–1) and random tissue contrasts
    (``domain_randomise``) in 30 %, so that a model learns the shape of the spine rather than one look of it.

    Example:
        >>> sorted(ct_spine_pathology(3))
        ['bmd', 'cobb', 'ct_dose', 'domain_randomise', 'fracture', 'fracture_type']
        >>> ct_spine_pathology(3) == ct_spine_pathology(3)
        True
    """
    rng = np.random.default_rng([int(seed), 0xC7])
    out: dict = {"bmd": float(rng.uniform(40.0, 260.0)), "ct_dose": float(rng.choice([0.25, 0.5, 1.0, 1.0]))}
    if rng.random() < 0.30:
        level = str(rng.choice(["T12", "L1", "L2", "L3", "L4", "L5"], p=[0.25, 0.3, 0.15, 0.1, 0.1, 0.1]))
        out["fracture"] = {level: float(rng.uniform(15.0, 50.0))}
        out["fracture_type"] = str(rng.choice(["wedge", "biconcave", "crush"]))
    if rng.random() < 0.20:
        out["slip"] = {str(rng.choice(["L4", "L5"])): float(rng.uniform(8.0, 40.0))}
    if rng.random() < 0.20:
        out["cobb"] = float(rng.uniform(5.0, 25.0))
    out["domain_randomise"] = bool(rng.random() < 0.30)
    return out


def phantom_ct_spine(n: int, seed: int = 0, shape: tuple[int, int, int] = (208, 160, 176),
                     spacing: float = 1.5) -> list[VolumePair]:
    """``n`` varied phantom CTs (HU) with their label maps — each case's pathology from
    :func:`ct_spine_pathology` — on a field of view as wide as the body (the default: 312 × 240 × 264 mm),
    so that a model also sees skin, air, bowel, kidneys and ribs, as on a real abdominal CT.

    Example:
        >>> pair = phantom_ct_spine(1, seed=5, shape=(64, 48, 64), spacing=3.0)[0]
        >>> pair.image.shape, pair.case_id
        ((64, 48, 64), 'phantom0005')
    """
    from lumbarlab.errors import LumbarLabError
    from lumbarlab.phantom import make_case

    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    out = []
    for k in range(n):
        case = make_case(seed + k, shape=shape, spacing=spacing, modalities=("ct",), **ct_spine_pathology(seed + k))
        out.append(VolumePair(case.volume("ct"), case.labels, f"phantom{seed + k:04d}"))
    return out


def ct_augment(seed: int = 0):
    """Random changes a CT patch can have on a real scanner, for training (MONAI transforms, one random stream
    seeded by ``seed``): a left-right mirror, a rotation up to 10° and a scale of ±10 % (patient position and
    size), a ±10 % gain and ±90 HU offset and a gamma of 0.8–1.25 (scanner calibration, kernels, contrast),
    Gaussian noise up to 60 HU (dose), blur and resampling from up to twice coarser voxels (slice thickness,
    soft kernels), and in 30 % of patches the end of the scan (:func:`_end_of_scan`). Works on ``normalize_ct`` images in [0, 1] (3000 HU wide) and their label patches.

    Returns:
        ``(image (1, X, Y, Z), labels (X, Y, Z)) → (image, labels)``, tensors in and out.

    Example:
        >>> import torch
        >>> aug = ct_augment(seed=0)
        >>> image, labels = aug(torch.rand(1, 32, 32, 32), torch.randint(0, 3, (32, 32, 32)))
        >>> tuple(image.shape), tuple(labels.shape), labels.dtype
        ((1, 32, 32, 32), (32, 32, 32), torch.int64)
    """
    import math

    import torch
    from monai.transforms import (
        Compose,
        RandAdjustContrastd,
        RandAffined,
        RandFlipd,
        RandGaussianNoised,
        RandGaussianSmoothd,
        RandScaleIntensityd,
        RandShiftIntensityd,
        RandSimulateLowResolutiond,
    )

    tenth = math.radians(10.0)
    pipeline = Compose([
        RandFlipd(["image", "label"], prob=0.5, spatial_axis=0),
        RandAffined(["image", "label"], prob=0.5, rotate_range=(tenth, tenth, tenth), scale_range=(0.1, 0.1, 0.1),
                    mode=("bilinear", "nearest"), padding_mode="zeros"),
        RandScaleIntensityd("image", factors=0.1, prob=0.5),
        RandShiftIntensityd("image", offsets=0.03, prob=0.5),
        RandAdjustContrastd("image", gamma=(0.8, 1.25), prob=0.3),
        RandSimulateLowResolutiond("image", prob=0.2, zoom_range=(0.5, 1.0)),
        RandGaussianSmoothd("image", sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0), sigma_z=(0.3, 1.0), prob=0.2),
        RandGaussianNoised("image", prob=0.3, std=0.02),
    ])
    pipeline.set_random_state(seed=seed)

    rng = np.random.default_rng([int(seed), 0xF0])

    def apply(image, labels):
        out = pipeline({"image": torch.as_tensor(image), "label": torch.as_tensor(labels)[None].float()})
        # MONAI hands back MetaTensors; plain tensors keep the DataLoader's collation and torch.jit simple
        image, labels = (getattr(out[k], "as_tensor", lambda v=out[k]: v)() for k in ("image", "label"))
        image, labels = image.float().contiguous(), labels[0].round().long().contiguous()
        return _end_of_scan(image, labels, rng)

    return apply


def _end_of_scan(image, labels, rng, p: float = 0.3):
    """With probability ``p``, the scan ends inside the patch: beyond a random plane across one axis (z most often:
    a pelvic or an upper-abdominal field; x or y: a small reconstruction circle) the image is air (0 after
    :func:`normalize_ct`) and the labels background — what sliding windows see at the edge of a real scan, which
    they pad with zeros. Without it a network trained inside whole phantom volumes mislabels the vertebrae next to
    the end of a short scan."""
    if rng.random() >= p:
        return image, labels
    axis = int(rng.choice([0, 1, 2], p=[0.15, 0.15, 0.7]))
    n = image.shape[1 + axis]
    cut = int(rng.integers(n // 8, n - n // 8))
    index = [slice(None)] * 3
    index[axis] = slice(cut, None) if rng.random() < 0.5 else slice(0, cut)
    image, labels = image.clone(), labels.clone()
    image[(slice(None), *index)] = 0.0
    labels[tuple(index)] = 0
    return image, labels


#: Bone density classes, in the order of a classifier's outputs (Pickhardt et al., Ann Intern Med 2013: ≤ 110 HU,
#: ≤ 160 HU, above).
DENSITY_CLASSES: tuple[str, ...] = ("osteoporosis", "osteopenia", "normal")

#: HU window (low, high) of bone-density networks: fat … dense trabecular bone, where the classes differ (the
#: full CT window would spend most of [0, 1] on air and cortex).
DENSITY_WINDOW = (-200.0, 600.0)


def dxa_t_score(trabecular_hu, seed: int = 0) -> np.ndarray:
    """A *teaching model* of the DXA T-score a person with this trabecular density would get — not data:
    T = −2.5 + (HU − 100) / 40, plus a person's own N(0, 0.7) for what DXA sees and CT's trabecular ROI does
    not (cortical bone, the posterior elements, osteophytes and aortic calcification in the projection, body
    size). Its line puts the mean L1 HU of DXA osteoporosis near 100, of osteopenia near 130 and of normal bone
    near 160, roughly as Pickhardt et al. (Ann Intern Med 2013) observed; the spread is ours.

    Example:
        >>> float(dxa_t_score(np.array([100.0]), seed=0)[0]) != -2.5   # the person's own deviation
        True
    """
    hu = np.asarray(trabecular_hu, dtype=float)
    rng = np.random.default_rng([int(seed), 0xDA])
    return -2.5 + (hu - 100.0) / 40.0 + rng.normal(0.0, 0.7, hu.shape)


@dataclass
class BoneDensitySplit:
    """Phantom CT crops around one vertebra for bone-density lessons and models.

    Attributes:
        images: (N, X, Y, Z) HU, RAS axes, a cube of ``spacing`` mm voxels centred on the vertebra.
        bmd: (N,) the trabecular density the phantom was built with (HU at 120 kVp, no contrast): the truth.
        roi_hu: (N,) the median HU of the trabecular ROI (:func:`lumbarlab.measure.trabecular_hu` on the true
            labels), as a radiologist would measure it on this scan.
        phase: contrast phase of each scan ("native", "arterial", "portal"); kvp: tube voltage.
        t_score: (N,) :func:`dxa_t_score` of each person (a teaching model).
        seeds: the anatomy seeds.
    """

    images: np.ndarray
    bmd: np.ndarray
    roi_hu: np.ndarray
    phase: np.ndarray
    kvp: np.ndarray
    t_score: np.ndarray
    seeds: np.ndarray
    spacing: float

    def __len__(self) -> int:
        return len(self.bmd)

    @property
    def category(self) -> np.ndarray:
        """(N,) class index of the *true* density in :data:`DENSITY_CLASSES` (0 osteoporosis, 1 osteopenia, 2 normal)."""
        return np.where(self.bmd <= 110.0, 0, np.where(self.bmd <= 160.0, 1, 2))

    @property
    def dxa_osteoporosis(self) -> np.ndarray:
        """(N,) 1 where the teaching model's T-score is −2.5 or lower (WHO's definition of osteoporosis)."""
        return (self.t_score <= -2.5).astype(int)


def phantom_bone_density(n: int, seed: int = 0, level: str = "L1", crop: int = 32, spacing: float = 1.5,
                         bmd_range: tuple[float, float] = (50.0, 250.0)) -> BoneDensitySplit:
    """``n`` clinical phantom CTs whose trabecular density is drawn uniformly from ``bmd_range`` (HU), each with
    the contrast phase and kVp its seed draws, cropped to a ``crop``³ cube centred on ``level``'s vertebral body
    (the centre of its trabecular ROI).

    Example:
        >>> split = phantom_bone_density(2, seed=7, crop=20, spacing=2.0)
        >>> split.images.shape, split.category.shape
        ((2, 20, 20, 20), (2,))
    """
    from lumbarlab.errors import LumbarLabError
    from lumbarlab.measure import trabecular_core
    from lumbarlab.phantom import make_case

    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    rng = np.random.default_rng([int(seed), 0xB0])
    bmd = rng.uniform(*bmd_range, n)
    side = max(crop, int(round(160.0 / spacing)))  # 160 mm: the whole vertebra, which the ROI's geometry needs
    shape = (side, side, int(round(230.0 / spacing)))  # T12 to the sacrum in z
    images, roi, phase, kvp = [], [], [], []
    for k in range(n):
        case = make_case(seed + k, shape=shape, spacing=spacing, modalities=("ct",), bmd=float(bmd[k]))
        core = trabecular_core(case.labels, level)  # the ROI of trabecular_hu: the crop is centred on the body
        centre = np.rint(np.argwhere(core).mean(axis=0)).astype(int)
        lo = centre - crop // 2
        pad = [(max(-a, 0), max(a + crop - n, 0)) for a, n in zip(lo, case.ct.shape, strict=True)]
        arr = np.pad(np.asarray(case.ct.array, np.float32), pad, constant_values=-1000.0)
        lo = lo + np.array([p[0] for p in pad])
        images.append(arr[lo[0]:lo[0] + crop, lo[1]:lo[1] + crop, lo[2]:lo[2] + crop])
        roi.append(float(np.median(np.asarray(case.ct.array)[core])))  # = trabecular_hu(case.ct, case.labels, level)
        acq = case.truth["realism"].get("acquisition", {})
        phase.append(acq.get("ct_phase", "native"))
        kvp.append(float(acq.get("ct_kvp", 120.0)))
    return BoneDensitySplit(np.stack(images), bmd, np.array(roi), np.array(phase), np.array(kvp),
                            dxa_t_score(bmd, seed), np.arange(seed, seed + n), float(spacing))
