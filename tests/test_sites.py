"""Imaging sites of the phantom: each site's images carry its acquisition, its population and its slip rate."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab.datasets import (
    SITES,
    XraySplit,
    lumbosacral_split,
    randomised,
    site_cases,
    site_params,
    site_radiographs,
    site_xrays,
)
from lumbarlab.errors import LumbarLabError
from lumbarlab.phantom.realism import ACQUISITION_KEYS


def test_every_site_sets_only_known_acquisition_values_and_all_three_modalities():
    for site in SITES.values():
        assert set(site.acquisition) <= set(ACQUISITION_KEYS)
        for key in ("xray_grid", "xray_exposure", "ct_kernel", "ct_phase", "ct_slice_mm", "mri_contrast"):
            assert key in site.acquisition, (site.name, key)
    assert len(SITES) >= 3 and len({s.acquisition["xray_grid"] for s in SITES.values()}) == 2


def test_radiographs_carry_their_sites_exposure_and_grid_in_their_truth():
    for name in ("hospital", "community"):
        site = SITES[name]
        for r in site_radiographs(site, 3, seed=40, size=48):
            acq = r.truth["acquisition"]
            assert r.truth["site"] == name
            assert acq["xray_grid"] is site.acquisition["xray_grid"]
            assert acq["xray_exposure"] == site.acquisition["xray_exposure"]
            assert r.truth["xray_photons"] == site.xray_photons
            # what the site leaves free still varies per patient (drawn from each case's seed)
        rotations = {p.acquisition["xray_rotation_deg"] for p in site_params(site, 4, seed=40)}
        assert len(rotations) == 4


def test_a_low_prevalence_site_slips_at_its_rate_within_binomial_tolerance():
    site = SITES["community"]  # 25 %
    n = 400
    slipped = sum(bool(p.slip) for p in site_params(site, n, seed=3_000))
    sd = np.sqrt(n * site.slip_prevalence * (1 - site.slip_prevalence))
    assert abs(slipped - n * site.slip_prevalence) < 4 * sd  # 4 sd: a false alarm once in ~16 000 runs
    slips = [v for p in site_params(site, 60, seed=3_000) for v in p.slip.values()]
    assert slips and all(site.slip_percent[0] <= v <= site.slip_percent[1] for v in slips)


def test_a_sites_population_keeps_its_age_and_fat_ranges_and_no_anatomy_is_shared_across_far_seeds():
    old = site_params(SITES["community"], 30, seed=0)
    assert all(55 <= p.age <= 85 for p in old)
    heavy = site_params(SITES["bariatric"], 10, seed=0)
    assert all(26 <= p.fat_thickness <= 35 for p in heavy)
    a = {p.seed for p in site_params(SITES["hospital"], 20, seed=0)}
    b = {p.seed for p in site_params(SITES["hospital"], 20, seed=10_000)}
    assert not a & b


def test_site_xrays_is_an_xray_split_with_labels_from_the_slips():
    split = site_xrays(SITES["vendor"], 6, seed=11, size=48)
    assert isinstance(split, XraySplit) and split.images.shape == (6, 48, 48)
    assert 0.0 <= split.images.min() and split.images.max() <= 1.0
    expected = [bool(p.slip) for p in site_params(SITES["vendor"], 6, seed=11)]
    assert split.labels.tolist() == [int(e) for e in expected]
    assert split.seeds.tolist() == [p.seed for p in site_params(SITES["vendor"], 6, seed=11)]


def test_sites_differ_in_the_pixels_not_only_in_the_truth():
    a = site_xrays(SITES["hospital"], 2, seed=5, size=64).images
    b = site_xrays(SITES["vendor"], 2, seed=5, size=64).images  # same population, same seeds: only acquisition differs
    assert np.abs(a - b).mean() > 0.02


def test_randomised_site_draws_acquisition_tissue_contrast_and_photons_per_case():
    ps = site_params(randomised(SITES["hospital"]), 6, seed=7)
    assert all(p.domain_randomise for p in ps)
    assert len({p.acquisition["xray_gamma"] for p in ps}) == 6
    photons = [p.xray_photons for p in ps]
    assert len(set(photons)) == 6 and all(0.1 * 5e5 <= v <= 2 * 5e5 for v in photons)


def test_lumbosacral_split_keeps_labels_and_moves_landmarks_with_the_pixels():
    from scipy import ndimage

    split = site_xrays(SITES["hospital"], 3, seed=21, size=96)
    crops = lumbosacral_split(split, size=48)
    assert crops.images.shape == (3, 48, 48) and crops.masks.shape == (3, 48, 48)
    assert crops.labels.tolist() == split.labels.tolist()
    gaps = []
    for i in range(3):
        for k in range(12, 22):  # L4, L5 and S1 corners: the same grey value before and after the crop
            before = ndimage.map_coordinates(split.images[i], [[split.corners[i, k, 1]], [split.corners[i, k, 0]]], order=1)
            after = ndimage.map_coordinates(crops.images[i], [[crops.corners[i, k, 1]], [crops.corners[i, k, 0]]], order=1)
            gaps.append(abs(float(before[0]) - float(after[0])))
    # corners sit on edges, where resampling to another scale blurs a little; a misplaced corner would differ by more
    assert np.mean(gaps) < 0.05 and max(gaps) < 0.15
    assert (crops.masks == 1).mean() > 0.05  # vertebral bodies fill a good part of the crop


def test_3d_cases_carry_the_sites_ct_and_mri_settings():
    from lumbarlab.phantom.render import ct_noise_sd

    low = site_cases(SITES["community"], 1, seed=2, shape=(24, 24, 32), spacing=4.0, modalities=("ct", "t2"))[0]
    ref = site_cases(SITES["hospital"], 1, seed=2, shape=(24, 24, 32), spacing=4.0, modalities=("ct",))[0]
    assert low.ct.shape == (24, 24, 32) and low.t2.shape == (24, 24, 32)
    assert low.truth["site"] == "community" and low.truth["acquisition"]["ct_kernel"] == "soft"
    assert low.truth["realism"]["acquisition"]["ct_phase"] == "native" and low.truth["ct_dose"] == 0.5
    # CT noise SD follows dose, kernel and slice thickness (Bushberg et al. ch. 10): 1/sqrt(0.5) · soft / sqrt(3 mm)
    from lumbarlab.phantom.render import KERNEL_NOISE

    expected = 12.0 / np.sqrt(0.5) * KERNEL_NOISE["soft"] / np.sqrt(3.0)
    assert ct_noise_sd(low.params) == pytest.approx(expected)
    assert ct_noise_sd(ref.params) == pytest.approx(12.0 * KERNEL_NOISE["standard"])
    image, _ = low.mri_sagittal("T2", SITES["community"].mri_slice_mm)
    assert image.spacing[0] == pytest.approx(SITES["community"].mri_slice_mm, abs=4.0)


def test_user_errors_say_what_to_do():
    with pytest.raises(LumbarLabError, match="ACQUISITION_KEYS"):
        SITES["hospital"].replace(acquisition={"xray_flux": 2.0})
    with pytest.raises(LumbarLabError, match="slip_prevalence"):
        SITES["hospital"].replace(slip_prevalence=1.5)
    with pytest.raises(LumbarLabError, match="widen"):
        site_params(SITES["hospital"].replace(age=(84.9, 85.0), fat_mm=(8.0, 8.1)), 2, seed=0)
    with pytest.raises(LumbarLabError, match="at least 1"):
        site_xrays(SITES["hospital"], 0, seed=0)


def _auc_either_way(y, feature):
    from lumbarlab.metrics import roc_auc

    a = roc_auc(y, feature)
    return max(a, 1.0 - a)


def test_the_crops_geometry_says_nothing_about_the_slip_whereas_a_box_around_the_corners_did():
    # 160 hospital radiographs, half of them slipped. A "classifier" that reads only the crop's framing — where S1
    # lies in the crop, how large the crop is — must be no better than chance: under the null the AUC of 160 cases
    # (about 80 + 80) has a standard deviation of about 0.046, so 0.5 ± 0.17 is a bound met in all but ~1 of
    # 10 000 runs (3.7 sd) per feature. The box around the L4–S1 corners that the lesson used before gave ~0.98 by its aspect.
    split = site_xrays(SITES["hospital"], 160, seed=600_000, size=96)
    y = split.labels
    assert 0.3 < y.mean() < 0.7
    crops = lumbosacral_split(split, size=48, seed=1)
    s1 = crops.corners[:, 20:22].mean(1)
    # how far the crop runs past the radiograph's lower edge (230 mm field, crop bottom 30 mm below S1's endplate)
    overflow = np.maximum(split.corners[:, 20:22, 1].mean(1) * split.spacing[0] + 30.0 - 230.0, 0.0)
    for feature in (s1[:, 0], s1[:, 1], overflow):
        assert _auc_either_way(y, feature) < 0.67
    assert crops.spacing == (140.0 / 48, 140.0 / 48)  # one scale for every case: no size cue either
    pts = split.corners[:, 12:]  # the old crop: a box around the L4–S1 corners
    width, height = pts[..., 0].max(1) - pts[..., 0].min(1), pts[..., 1].max(1) - pts[..., 1].min(1)
    assert _auc_either_way(y, width / height) > 0.9
    # every L4–S1 corner stays inside the crop despite the jitter
    assert crops.corners[:, 12:].min() >= 0 and crops.corners[:, 12:].max() <= 47


def test_same_patients_at_two_sites_differ_only_in_acquisition():
    a = site_params(SITES["hospital"], 5, seed=70)
    b = site_params(SITES["community"], 5, seed=70, population=SITES["hospital"])
    assert [p.seed for p in a] == [p.seed for p in b] and [p.slip for p in a] == [p.slip for p in b]
    assert all(p.acquisition["xray_grid"] is False for p in b)
    r = next(site_radiographs(SITES["community"], 1, seed=70, size=32, population=SITES["hospital"]))
    assert r.truth["site"] == "community" and r.truth["population"] == "hospital"


def test_site_values_are_consistent_and_randomisation_covers_every_sites_scatter():
    from lumbarlab.datasets.sites import RANDOMISED_SCATTER

    # both 3 T-like sites: T1 contrast shrinks at 3 T (Soher et al. 2007)
    assert SITES["vendor"].acquisition["mri_contrast"] < 1 and SITES["bariatric"].acquisition["mri_contrast"] < 1
    assert SITES["bariatric"].xray_photons < SITES["hospital"].xray_photons  # thick patients: few photons
    ps = site_params(randomised(SITES["hospital"]), 40, seed=9)
    for site in SITES.values():
        lo, hi = RANDOMISED_SCATTER[0 if site.acquisition["xray_grid"] else 1]
        assert lo <= site.acquisition["xray_scatter_ratio"] <= hi, site.name
        assert 0.1 * 5e5 <= site.xray_photons <= 2 * 5e5
    for p in ps:
        lo, hi = RANDOMISED_SCATTER[0 if p.acquisition["xray_grid"] else 1]
        assert lo <= p.acquisition["xray_scatter_ratio"] <= hi
