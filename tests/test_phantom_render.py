"""Tissue intensities of the rendered modalities against textbook values and orderings."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab.phantom import DISCS, Material, make_case, sample_params
from lumbarlab.phantom.fast2d import lateral_radiograph, lateral_radiographs

NUCLEI = list(range(Material.NUCLUS0, Material.NUCLUS0 + 6))
ANNULI = list(range(Material.ANNULUS0, Material.ANNULUS0 + 6))
TRABECULAR = list(range(Material.TRABECULAR0, Material.TRABECULAR0 + 6))  # T12–L5

# (materials, low, high) in HU, from the table (Bushberg et al.).
CT_RANGES = [
    ([Material.FAT], -130.0, -70.0),
    ([Material.MUSCLE], 40.0, 60.0),
    ([Material.CSF], 0.0, 15.0),
    (NUCLEI + ANNULI, 70.0, 100.0),
    (TRABECULAR, 100.0, 300.0),
    ([Material.CORTICAL], 500.0, 1300.0),
]


def _median(volume, material, codes, erode: bool = False):
    mask = np.isin(material, codes)
    if erode:
        from scipy import ndimage

        mask = ndimage.binary_erosion(mask)
    return float(np.median(volume[mask]))


@pytest.mark.parametrize("codes,low,high", CT_RANGES)
def test_ct_tissue_medians_in_range(healthy_case, codes, low, high):
    med = _median(healthy_case.ct.array, healthy_case.material.array, codes)
    assert low <= med <= high, (codes, med)


def test_trabecular_hu_follows_density_parameter():
    for bmd in (80.0, 150.0, 240.0):
        case = make_case(sample_params(3, bmd=bmd), shape=(96, 96, 128), spacing=1.0, modalities=("ct",))
        med = _median(case.ct_clean.array, case.material.array, [Material.TRABECULAR0 + 3], erode=True)
        assert med == pytest.approx(bmd, abs=10.0)


@pytest.mark.parametrize("kernel,slice_mm", [(None, None), ("soft", 1.0), ("bone", 1.0), ("standard", 3.0)])
def test_ct_noise_follows_dose_kernel_and_slice(healthy_case, kernel, slice_mm):
    """SD = ct_noise · kernel factor / √dose / √(slice / 1 mm); the teaching preset is the plain 1/√dose."""
    from lumbarlab.phantom.render import KERNEL_NOISE

    params = healthy_case.params
    if kernel is None:
        params, factor = params.replace(realism="teaching"), 1.0
    else:
        params = params.replace(acquisition={**params.acquisition, "ct_kernel": kernel, "ct_slice_mm": slice_mm})
        factor = KERNEL_NOISE[kernel] / np.sqrt(slice_mm)
    for dose in (0.25, 1.0, 4.0):
        case = make_case(params.replace(ct_dose=dose), shape=(64, 64, 64), spacing=2.0, modalities=("ct",))
        sd = float(np.std(case.ct.array - case.ct_clean.array))
        assert sd == pytest.approx(params.ct_noise * factor / np.sqrt(dose), rel=0.05)


def test_mri_orderings(healthy_case):
    t1, t2, mat = healthy_case.t1.array, healthy_case.t2.array, healthy_case.material.array
    # the case's healthy discs (Pfirrmann I–II; a clinical case of its age has degenerated ones too)
    healthy = [i for i, d in enumerate(DISCS) if healthy_case.params.pfirrmann[d] <= 2]
    assert healthy
    m = {name: (_median(t1, mat, codes), _median(t2, mat, codes)) for name, codes in {
        "fat": [Material.FAT], "muscle": [Material.MUSCLE], "csf": [Material.CSF],
        "nucleus": [Material.NUCLUS0 + i for i in healthy], "annulus": [Material.ANNULUS0 + i for i in healthy],
        "cortex": [Material.CORTICAL],
    }.items()}
    # fat bright on both
    assert m["fat"][0] > m["muscle"][0] and m["fat"][1] > m["muscle"][1]
    # CSF dark on T1, bright on T2
    assert m["csf"][0] < m["muscle"][0] and m["csf"][1] > m["fat"][1]
    # a healthy nucleus is bright on T2, the annulus and the cortex dark
    assert m["nucleus"][1] > 2 * m["annulus"][1]
    assert m["cortex"][0] < m["muscle"][0] and m["cortex"][1] < m["muscle"][1]


def test_nucleus_t2_darkens_with_pfirrmann_grade():
    signal = []
    for grade in (1, 2, 3, 4, 5):
        case = make_case(sample_params(4, pfirrmann={"L4-L5": grade}), shape=(96, 96, 128), spacing=1.25,
                         modalities=("t2",), noise=False)
        signal.append(_median(case.t2.array, case.material.array, [Material.NUCLUS0 + DISCS.index("L4-L5")]))
    assert signal == sorted(signal, reverse=True) and signal[0] > 3 * signal[-1]


def test_rician_background_statistics():
    """In air the magnitude of pure complex Gaussian noise is Rayleigh: mean = sigma·sqrt(pi/2)."""
    case = make_case(sample_params(1, mri_noise=0.04), modalities=("t1",), shape=(96, 96, 64), spacing=2.5)
    air = case.t1.array[case.material.array == Material.AIR]
    sigma = 0.04 * 1000
    assert air.size > 1000
    assert float(air.mean()) == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.05)


@pytest.mark.parametrize("realism", ["teaching", "clinical"])
def test_xray_bone_brighter_than_soft_tissue(healthy_case, realism):
    case = healthy_case if realism == "clinical" else make_case(healthy_case.params.replace(realism="teaching"),
                                                                 modalities=("xray",))
    for rad in (case.lateral, case.ap):
        # inside the collimated field (clinical borders are unexposed, as bright as bone)
        rows, cols = rad.image.shape
        inner = (slice(rows // 10, rows - rows // 10), slice(cols // 10, cols - cols // 10))
        image, labels, bodies = rad.image[inner], rad.labels[inner], rad.body_labels[inner]
        bone = image[bodies > 0].mean()  # vertebral bodies
        soft = image[(labels == 0) & (image > 0.05)].mean()
        assert bone > soft + 0.05, rad.view


def test_fast_lateral_matches_volume_anatomy():
    """The fast generator draws the same vertebrae: its label areas match the projected labels of the
    3D render on the same pixel grid within 10 %."""
    params = sample_params(8, slip={"L5": 25})
    fast = lateral_radiograph(params, size=256, noise=False)
    case = make_case(params, noise=False)
    for name in ("L2", "L3", "L4"):
        label = case.spine.vertebrae[name].label
        area_fast = (fast.labels == label).sum() * fast.spacing[0] * fast.spacing[1]
        area_3d = (case.lateral.labels == label).sum() * case.lateral.spacing[0] * case.lateral.spacing[1]
        assert area_fast == pytest.approx(area_3d, rel=0.10), name


def test_fast_lateral_dataset_is_reproducible_and_mixed():
    a = list(lateral_radiographs(12, seed=5, size=96))
    b = list(lateral_radiographs(12, seed=5, size=96))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
    slipped = [max(r.truth["slip_percent"].values()) > 0 for r in a]
    assert 0 < sum(slipped) < len(slipped)
    assert all(r.image.shape == (96, 96) and set(r.corners) >= {"L1", "L5", "S1"} for r in a)


@pytest.mark.parametrize("side_mm", [120.0, 170.0, 340.0])
def test_fast_lateral_renders_any_field_of_view(side_mm):
    """A field of view narrower or wider than the default 230 mm renders: structures outside it are left out (a
    170 mm view used to crash, an empty window above the image read as 'all rows but the last two'), and the
    pixel size follows the field."""
    from lumbarlab.phantom.anatomy import build_spine
    from lumbarlab.phantom.fast2d import LateralFOV

    params = sample_params(990_000)
    rad = lateral_radiograph(params, size=128, fov=LateralFOV.around(build_spine(params), side_mm))
    assert rad.image.shape == (128, 128) and np.isfinite(rad.image).all()
    assert rad.spacing[0] == pytest.approx(side_mm / 128)
    present = set(np.unique(rad.body_labels).tolist())
    assert {22, 23} <= present  # L3 and L4 sit in the middle of every field
    if side_mm < 150:
        assert 19 not in present  # T12 lies outside a 120 mm field centred on L1–S1
