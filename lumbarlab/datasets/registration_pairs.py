"""Pairs of phantom CT scans for registration, with every landmark known in both: one patient in two postures (a
change of lumbar lordosis, as between a flexion and an extension view, and optionally a different table position),
or two different patients.

The phantom builds the lumbar chain up from S1, so a change of lordosis keeps the sacrum where it is, turns every
vertebra by the wedge of the discs below it and leaves each vertebra's own shape untouched: between two postures each
vertebra moves rigidly while the spine as a whole bends — the reason issue #18's lesson ends with a rigid registration
per vertebra. The second scan of a pair is a new acquisition: its noise is drawn afresh (a shared noise pattern
would be a false clue that the two images line up at the identity).

Landmarks: for each of L1–L5 the body centre, the four corners of the body in the mid-sagittal plane and the four in
the mid-coronal plane (:mod:`lumbarlab.phantom.anatomy`), 45 points in mm (RAS) named ``"L3 centre"``,
``"L3 lateral 2"``, ….

Example:
    >>> pair = posture_pair(900_800, flexion_deg=8.0, shape=(48, 40, 80), spacing=3.0)
    >>> pair.fixed.shape, pair.moving.shape, pair.fixed_points.shape
    ((48, 40, 80), (48, 40, 80), (45, 3))
    >>> d = np.linalg.norm(pair.moving_points - pair.fixed_points, axis=1)   # L1 moves most, L5 least
    >>> bool(d[:9].mean() > 5.0 > d[36:].mean())
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume

__all__ = ["RegistrationPair", "spine_landmarks", "posture_pair", "patient_pair", "PAIR_LEVELS", "PAIR_CLASSES",
           "ct_window", "pair_arrays", "random_flexion", "PosturePairs"]

PAIR_LEVELS = ("L1", "L2", "L3", "L4", "L5")
#: label values that become classes 1 … 7 of the learned registration's label loss: T12, L1–L5, the sacrum (VerSe)
PAIR_CLASSES = (19, 20, 21, 22, 23, 24, 26)


@dataclass
class RegistrationPair:
    """Two CT scans (HU, each on its own grid) with their label maps (VerSe values) and the same landmarks in both
    (mm, RAS); ``moving_points[i]`` is where ``fixed_points[i]`` lies in the moving scan."""

    fixed: Volume
    moving: Volume
    fixed_labels: Volume
    moving_labels: Volume
    fixed_points: np.ndarray
    moving_points: np.ndarray
    point_names: list[str]
    description: str


def spine_landmarks(spine, levels: tuple[str, ...] = PAIR_LEVELS) -> tuple[list[str], np.ndarray]:
    """Named vertebral landmarks of a phantom spine: each level's body centre, its four mid-sagittal and four
    mid-coronal body corners (mm, RAS).

    Example:
        >>> from lumbarlab.phantom import make_case
        >>> names, pts = spine_landmarks(make_case(3, modalities=()).spine, ("L4",))
        >>> names[:2], pts.shape
        (['L4 centre', 'L4 lateral 1'], (9, 3))
    """
    names, points = [], []
    for level in levels:
        v = spine.vertebrae[level]
        names.append(f"{level} centre")
        points.append(np.asarray(v.body_centre(), float))
        for kind, local in (("lateral", v.lateral_corners_local()), ("coronal", v.ap_corners_local())):
            for i, p in enumerate(v.to_world(local), 1):
                names.append(f"{level} {kind} {i}")
                points.append(np.asarray(p, float))
    return names, np.asarray(points, float)


def _scan(params, grid, stream: int):
    """The phantom CT of ``params`` on ``grid`` with its own noise draw (``stream`` 0 is make_case's own)."""
    from lumbarlab.phantom import make_case
    from lumbarlab.phantom.render import render_ct, trabecular_texture

    case = make_case(params, grid=grid, modalities=("ct",))
    if stream:
        rng = np.random.default_rng([params.seed, 0x2EC, stream])
        texture = trabecular_texture(case.material.array, params, grid.spacing)
        ct, _ = render_ct(case.material.array, params, rng, grid.spacing, False, texture)
        case.ct = Volume(ct, grid.spacing, grid.origin)
    return case


def _lordosis(seed: int) -> float:
    from lumbarlab.phantom import make_case

    return float(make_case(seed, modalities=(), shape=(8, 8, 8)).truth["lordosis_L1_S1_deg"])


def posture_pair(seed: int, flexion_deg: float = 8.0, shift_mm=(0.0, 0.0, 0.0), shape=(48, 40, 80),
                 spacing: float = 3.0) -> RegistrationPair:
    """One phantom patient scanned twice: fixed in the posture of its anatomy, moving with ``flexion_deg`` less
    lumbar lordosis (negative: extension) and moved by ``shift_mm`` on the table (x, y, z in mm).

    Both scans share one field of view (the fixed scan's grid, centred on the spine), so a shift moves the patient
    within it; what leaves it is not scanned.

    Args:
        seed: the patient (phantom anatomy seed).
        flexion_deg: lordosis of the moving scan = the patient's own minus this (degrees, L1–S1 Cobb).
        shift_mm: the patient's displacement on the table in the moving scan (mm, RAS).
        shape, spacing: the scanner grid (voxels, mm).

    Raises:
        LumbarLabError: a posture outside the phantom's 20–80° of lordosis.
    """
    from lumbarlab.phantom import make_case, sample_params
    from lumbarlab.phantom.voxelize import Grid, default_grid

    own = _lordosis(seed)
    fixed_params = sample_params(seed)
    moving_params = sample_params(seed, lordosis=own - float(flexion_deg))
    grid = default_grid(make_case(fixed_params, modalities=(), shape=(8, 8, 8)).spine, shape, spacing)
    fixed = _scan(fixed_params, grid, 0)
    shift = np.asarray(shift_mm, float)
    if shift.shape != (3,) or not np.isfinite(shift).all():
        raise LumbarLabError(f"shift_mm must be three finite numbers (x, y, z in mm), got {shift_mm!r}.")
    # the patient moved by +shift in the scanner = the scanner's grid moved by −shift around the patient
    moved_grid = Grid(grid.shape, grid.spacing, tuple(np.asarray(grid.origin) - shift))
    moving = _scan(moving_params, moved_grid, 1)
    names, fixed_pts = spine_landmarks(fixed.spine)
    _, moving_pts = spine_landmarks(moving.spine)
    relabel = {"ct": moving.ct, "labels": moving.labels}
    moving_ct, moving_labels = (Volume(np.asarray(relabel[k].array), grid.spacing, grid.origin) for k in ("ct", "labels"))
    return RegistrationPair(fixed.ct, moving_ct, fixed.labels, moving_labels, fixed_pts, moving_pts + shift, names,
                            f"patient {seed}: lordosis {own:.0f}° → {own - flexion_deg:.0f}°, table shift "
                            f"{np.round(shift, 1).tolist()} mm")


def patient_pair(fixed_seed: int, moving_seed: int, shape=(48, 40, 80), spacing: float = 3.0) -> RegistrationPair:
    """Two different patients, each scanned on a grid of the same shape centred on their own spine (an atlas-to-
    patient registration); landmarks correspond by name (L3's centre to L3's centre).

    Example:
        >>> pair = patient_pair(900_801, 900_802)
        >>> pair.point_names[0], bool(np.linalg.norm(pair.moving_points - pair.fixed_points, axis=1).mean() > 1.0)
        ('L1 centre', True)
    """
    from lumbarlab.phantom import make_case

    if fixed_seed == moving_seed:
        raise LumbarLabError("patient_pair needs two different seeds; use posture_pair for one patient.")
    fixed = make_case(fixed_seed, shape=shape, spacing=spacing, modalities=("ct",))
    moving = make_case(moving_seed, shape=shape, spacing=spacing, modalities=("ct",))
    names, fixed_pts = spine_landmarks(fixed.spine)
    _, moving_pts = spine_landmarks(moving.spine)
    return RegistrationPair(fixed.ct, moving.ct, fixed.labels, moving.labels, fixed_pts, moving_pts, names,
                            f"patient {moving_seed} → patient {fixed_seed}")


def ct_window(hu: np.ndarray, low: float = -200.0, high: float = 1500.0) -> np.ndarray:
    """CT in HU → [0, 1] over a bone-and-soft-tissue window (``low``–``high`` HU), the input scale of the learned
    registration; NaN (not scanned) stays NaN.

    Example:
        >>> ct_window(np.array([-1000.0, -200.0, 650.0, 3000.0])).tolist()
        [0.0, 0.0, 0.5, 1.0]
    """
    if high <= low:
        raise LumbarLabError(f"the window's high end ({high}) must lie above its low end ({low}).")
    return np.clip((np.asarray(hu, np.float32) - low) / np.float32(high - low), 0.0, 1.0)


def pair_arrays(pair: RegistrationPair, window=(-200.0, 1500.0)) -> tuple[np.ndarray, np.ndarray]:
    """A pair on one grid as network arrays: inputs (2, …) = windowed moving, fixed CT; targets (3, …) = the fixed
    image, then the moving and fixed labels as classes of :data:`PAIR_CLASSES` (the layout
    :class:`lumbarlab.losses.RegistrationLoss` reads).

    Raises:
        LumbarLabError: the two scans are not on one grid (register them rigidly and resample first).
    """
    if pair.moving.shape != pair.fixed.shape or not np.allclose(pair.moving.affine, pair.fixed.affine):
        raise LumbarLabError("the moving and fixed scans must share one grid for a network; resample the moving scan "
                             "onto the fixed grid (lumbarlab.register.deformable.warp_volume) first.")
    lut = np.zeros(256, np.float32)
    lut[list(PAIR_CLASSES)] = np.arange(1, len(PAIR_CLASSES) + 1)
    classes = [lut[np.clip(np.asarray(v.array), 0, 255).astype(np.int64)] for v in (pair.moving_labels, pair.fixed_labels)]
    m, f = (np.nan_to_num(ct_window(v.array, *window), nan=0.0) for v in (pair.moving, pair.fixed))
    return np.stack([m, f]).astype(np.float32), np.stack([f, *classes]).astype(np.float32)


def random_flexion(seed: int, largest: float = 10.0) -> float:
    """The posture change of training/test pair ``seed``: uniform in ±``largest`` degrees of lordosis, drawn from
    the seed (so a split is the same on every machine), and kept inside the phantom's 20–80°.

    Example:
        >>> random_flexion(5) == random_flexion(5), abs(random_flexion(5)) <= 10.0
        (True, True)
    """
    change = float(np.random.default_rng([int(seed), 0xF1E]).uniform(-largest, largest))
    own = _lordosis(seed)
    return float(np.clip(change, own - 78.0, own - 22.0))


class PosturePairs:
    """A torch-style dataset of ``count`` posture pairs from anatomy seeds ``first_seed`` … (each with
    :func:`random_flexion`, no table shift), rendered once: item ``i`` is (inputs, targets) of :func:`pair_arrays`.

    Example:
        >>> data = PosturePairs(900_810, 1, shape=(16, 16, 32), spacing=8.0)
        >>> [a.shape for a in data[0]], len(data)
        ([(2, 16, 16, 32), (3, 16, 16, 32)], 1)
    """

    def __init__(self, first_seed: int, count: int, shape=(40, 32, 64), spacing: float = 4.0):
        self.items = [pair_arrays(posture_pair(s, random_flexion(s), shape=shape, spacing=spacing))
                      for s in range(first_seed, first_seed + count)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.items[i]
