"""The clinical preset of the phantom: anatomy, texture and acquisition with known answers.

Every test states the number it expects and why; the teaching preset stays the clean cartoon.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.phantom import DISC_LABEL, DISCS, VERSE_LABEL, Material, make_case, sample_params
from lumbarlab.phantom.radiography import XrayGeometry, project_cone
from lumbarlab.phantom.render import ct_noise_sd, ct_table
from lumbarlab.phantom.surroundings import iliac_crest_z

TRABECULAR = list(range(Material.TRABECULAR0, Material.TRABECULAR0 + 6))  # T12–L5


@pytest.fixture(scope="module")
def clinical():
    """A clinical case with the field extended up to T11 (ribs) and a known portal-phase, bone-kernel CT."""
    params = sample_params(11, rib_pairs=12)
    return make_case(params, shape=(160, 160, 240), noise=True)


@pytest.fixture(scope="module")
def teaching():
    return make_case(sample_params(11, realism="teaching"), shape=(160, 160, 240), noise=True)


def test_teaching_is_the_cartoon_and_clinical_adds_realism(clinical, teaching):
    assert teaching.params.acquisition == {} and teaching.truth["realism"]["preset"] == "teaching"
    assert all(v == 0.0 for v in teaching.truth["realism"]["endplate_concavity_mm"].values())
    extra = (Material.PELVIS, Material.RIB, Material.KIDNEY, Material.AORTA, Material.IVC, Material.LIVER)
    assert not np.isin(teaching.material.array, extra).any()
    found = set(np.unique(clinical.material.array).tolist())
    assert {Material.RIB, Material.KIDNEY, Material.AORTA, Material.IVC} <= found
    concavity = clinical.truth["realism"]["endplate_concavity_mm"]
    assert all(1.0 * 0.88 <= c <= 2.0 * 1.12 for c in concavity.values())  # 1–2 mm, scaled with the body
    assert clinical.truth["realism"]["acquisition"] == clinical.params.acquisition != {}


def test_trabecular_texture_sd_in_stated_range(clinical, teaching):
    """Inside eroded trabecular bone, the noise-free clinical CT varies by 25–60 HU (texture after the scanner
    blur; real 1 mm trabecular ROIs vary by a few tens of HU) — over twice its quantum noise; the teaching
    preset's bone is flat (only the blur's edge)."""
    for case, low, high in ((clinical, 25.0, 60.0), (teaching, 0.0, 8.0)):
        mask = ndimage.binary_erosion(np.isin(case.material.array, TRABECULAR[2:5]), iterations=2)
        sd = float(case.ct_clean.array[mask].std())
        assert low <= sd <= high, (case.params.realism, sd)
    assert float(clinical.ct_clean.array[mask].std()) > 2 * ct_noise_sd(clinical.params)


def test_contrast_phase_and_kvp_shift_hu():
    """Portal-phase contrast adds 11 HU to trabecular bone (Pickhardt 2011); 100 kVp reads bone 8 % higher
    than 120 kVp; the aorta is 320 HU in the arterial phase and 40 HU without contrast."""
    base = sample_params(4, bmd=150.0)
    def lut(**acq):
        return ct_table(base.replace(acquisition={**base.acquisition, **acq}))

    native = lut(ct_phase="native", ct_kvp=120.0)
    portal = lut(ct_phase="portal", ct_kvp=120.0)
    low_kv = lut(ct_phase="native", ct_kvp=100.0)
    l1 = Material.TRABECULAR0 + 1
    assert native[l1] == pytest.approx(150.0) and portal[l1] == pytest.approx(161.0)
    assert low_kv[l1] == pytest.approx(150.0 * 1.08)
    assert lut(ct_phase="arterial")[Material.AORTA] == 320.0 and native[Material.AORTA] == 40.0


def test_mri_orderings_hold_on_the_clinical_preset(clinical):
    t1, t2, mat = clinical.t1.array, clinical.t2.array, clinical.material.array
    marrow = np.isin(mat, TRABECULAR)
    muscle = mat == Material.MUSCLE
    csf = mat == Material.CSF
    assert np.median(t1[marrow]) > np.median(t1[muscle])  # marrow brighter than muscle on T1
    assert np.median(t2[csf]) > np.median(t2[marrow]) and np.median(t1[csf]) < np.median(t1[muscle])


def test_marrow_t1_rises_with_age():
    young = make_case(sample_params(5, age=25.0), shape=(64, 64, 80), spacing=2.5, modalities=("t1",), noise=False)
    old = make_case(sample_params(5, age=80.0), shape=(64, 64, 80), spacing=2.5, modalities=("t1",), noise=False)
    marrow = np.isin(young.material.array, TRABECULAR)
    assert np.median(old.t1.array[marrow]) > np.median(young.t1.array[marrow]) + 100.0


def test_iliac_crest_at_the_l4_l5_level_on_the_ap_view(clinical):
    """The crest's top lies between the L4 and L5 body centres (the L4–L5 disc ± 12 mm), and the AP image is
    brighter just below the crest than just above it, beside the spine (|x| 55–75 mm)."""
    spine = clinical.spine
    crest = clinical.truth["realism"]["iliac_crest_z_mm"]
    assert crest == pytest.approx(iliac_crest_z(spine))
    assert spine.vertebrae["L5"].body_centre()[2] < crest < spine.vertebrae["L4"].body_centre()[2]
    case = make_case(clinical.params, shape=(200, 160, 240), noise=False, modalities=("xray",))
    grid, ap = case.grid, case.ap
    x = grid.axes()[0]
    cols = [(grid.shape[0] - 1) - i for i in np.nonzero((np.abs(x) > 55) & (np.abs(x) < 75))[0]]
    z_top = crest - 25.0 * spine.params.scale * ((65.0 - 85.0 * spine.params.scale) / (45.0 * spine.params.scale)) ** 2

    def band(z_lo, z_hi):
        rows = [(grid.shape[2] - 1) - k for k in np.nonzero((grid.axes()[2] > z_lo) & (grid.axes()[2] < z_hi))[0]]
        return float(ap.image[np.ix_(rows, cols)].mean())

    assert band(z_top - 16.0, z_top - 6.0) > band(z_top + 6.0, z_top + 16.0) + 0.03


@pytest.mark.parametrize("pairs,carriers", [(12, ["T12"]), (11, []), (13, ["T12", "L1"])])
def test_ribs_on_t12_and_transitional_counts(pairs, carriers):
    """A rib leaves each rib-bearing vertebra of the field: T12 with 12 pairs, none of T12–L5 with 11, and a
    lumbar rib on L1 with 13 — the variants that make counting from the last rib mislabel levels."""
    case = make_case(sample_params(11, rib_pairs=pairs), shape=(110, 90, 150), spacing=2.0, noise=False, modalities=())
    rib = case.material.array == Material.RIB
    near = ndimage.binary_dilation(rib, iterations=2)
    touched = [name for name in ("T12", "L1", "L2") if (near & (case.labels.array == VERSE_LABEL[name])).any()]
    assert touched == carriers
    assert case.truth["realism"]["rib_pairs"] == pairs
    assert case.truth["realism"]["ribs_on"][-1] == (carriers[-1] if carriers else "T11")


def test_spondylolysis_detaches_the_inferior_articular_processes():
    """A pars defect leaves each inferior articular process of L5 as its own piece: 3 components, not 1."""
    pieces = {}
    for lysis in ([], ["L5"]):
        case = make_case(sample_params(6, spondylolysis=lysis), spacing=1.0, noise=False, modalities=())
        _, pieces[bool(lysis)] = ndimage.label(case.labels.array == VERSE_LABEL["L5"])
    assert pieces == {False: 1, True: 3}


def test_degeneration_signs_render_as_published():
    """Modic 1: T1 dark, T2 bright; Modic 2: T1 bright; sclerosis dense on CT; a vacuum disc holds gas
    (−1000 HU); a Schmorl node puts disc inside the vertebral body (Modic et al., Radiology 1988)."""
    params = sample_params(2, pfirrmann={"L3-L4": 5, "L4-L5": 5}, modic={"L3-L4": 1, "L4-L5": 2},
                           sclerosis=["L4-L5"], vacuum=["L4-L5"], schmorl=["L2"])
    case = make_case(params, spacing=1.0, noise=False)
    mat, lab = case.material.array, case.labels.array
    marrow = np.median(case.t1.array[mat == Material.TRABECULAR0 + 2])
    assert np.median(case.t1.array[mat == Material.MODIC1]) < marrow
    assert np.median(case.t2.array[mat == Material.MODIC1]) > np.median(case.t2.array[mat == Material.TRABECULAR0 + 2])
    assert np.median(case.t1.array[mat == Material.MODIC2]) > marrow
    assert np.median(case.ct_clean.array[mat == Material.SCLEROSIS]) > 500.0
    disc = lab == DISC_LABEL["L4-L5"]
    assert (disc & (mat == Material.AIR)).sum() > 50
    node = (lab == DISC_LABEL["L1-L2"]) & (mat == Material.NUCLUS0 + DISCS.index("L1-L2"))
    l2 = case.spine.vertebrae["L2"]
    below_rim = l2.to_local(case.labels.index_to_world(np.argwhere(node)))[:, 2] < l2.hm - l2.concavity
    assert below_rim.sum() > 100  # disc (nucleus) inside L2 under its endplate: about half a 5×5×4 mm ellipsoid
    assert case.truth["params"]["schmorl"] == ["L2"]


def test_cone_beam_magnifies_by_distance():
    """A 4 mm cube 100 mm nearer the source than the isocentre projects 900/(900−100) = 1.125 times larger."""
    geo = XrayGeometry(sod=900.0, oid=200.0, rotation=0.0, tilt=0.0)
    vol = np.zeros((260, 80, 80), dtype=np.float32)
    vol[228:232, 38:42, 38:42] = 1.0  # depth +100 mm (index 230 ↔ depth = index − 130)
    depths = np.arange(260) - 130.0
    p = project_cone(vol, 0, 1.0, depths, geo, (1.0, 1.0), (-39.5, -39.5), (0.0, 0.0), slab_mm=1.0)
    assert p.sum() == pytest.approx(4 * 16 * 1.125**2, rel=0.05)  # area grows by m² (±5 %: linear resampling)
    a, u = geo.to_detector(np.array([10.0]), np.array([-5.0]), np.array([100.0]), (0.0, 0.0))
    assert (a[0], u[0]) == pytest.approx((11.25, -5.625))
    back = geo.sample_at(a, u, 100.0, (0.0, 0.0))
    assert (back[0][0], back[1][0]) == pytest.approx((10.0, -5.0))


def test_domain_randomisation_changes_intensities_not_anatomy():
    a = make_case(sample_params(3), shape=(48, 48, 64), spacing=3.5, noise=False, modalities=("ct",))
    b = make_case(sample_params(3, domain_randomise=True), shape=(48, 48, 64), spacing=3.5, noise=False,
                  modalities=("ct",))
    c = make_case(sample_params(4, domain_randomise=True), shape=(48, 48, 64), spacing=3.5, noise=False,
                  modalities=("ct",))
    np.testing.assert_array_equal(a.labels.array, b.labels.array)
    la, lb, lc = ct_table(a.params), ct_table(b.params), ct_table(c.params)
    assert la[Material.AIR] == lb[Material.AIR] == -1000.0
    assert np.abs(la[1:] - lb[1:]).mean() > 20.0 and np.abs(lb[1:] - lc[1:]).mean() > 20.0


def test_acquisition_overrides_and_errors():
    params = sample_params(8, acquisition={"ct_kernel": "bone", "xray_rotation_deg": 5.0})
    assert params.acquisition["ct_kernel"] == "bone" and params.acquisition["xray_rotation_deg"] == 5.0
    assert sample_params(8).acquisition["texture_seed"] == params.acquisition["texture_seed"]  # the rest as drawn
    with pytest.raises(LumbarLabError, match="unknown acquisition"):
        sample_params(8, acquisition={"kvp": 90})
    with pytest.raises(LumbarLabError, match="realism"):
        sample_params(8, realism="photo")
    with pytest.raises(LumbarLabError, match="rib_pairs"):
        sample_params(8, rib_pairs=14)


def test_population_rates_of_the_clinical_draw():
    """Over 400 people: 11 rib pairs in ~5 %, spondylolysis in ~6 %, a degenerated (Pfirrmann ≥ III) disc in
    most people over 50 and fewer under 35 (Brinjikji 2015), facet arthrosis rising with age."""
    people = [sample_params(s) for s in range(400)]
    assert 0.02 <= np.mean([p.rib_pairs == 11 for p in people]) <= 0.09
    assert 0.02 <= np.mean([bool(p.spondylolysis) for p in people]) <= 0.11
    young = [p for p in people if p.age < 35]
    old = [p for p in people if p.age > 50]
    def degenerated(ps):
        return np.mean([max(p.pfirrmann.values()) >= 3 for p in ps])

    assert degenerated(old) > 0.6 > degenerated(young) > 0.2
    assert np.mean([bool(p.facet_arthrosis) for p in old]) > np.mean([bool(p.facet_arthrosis) for p in young])
    assert all(p.realism == "clinical" for p in people)


def test_thick_sagittal_slices_with_a_gap():
    """4 mm slices every 4.8 mm (a 20 % gap): the stack's pitch is 4.8 mm and each slice averages 4 mm."""
    case = make_case(sample_params(5), shape=(96, 64, 80), spacing=0.8, modalities=("t2",), noise=False)
    image, labels = case.mri_sagittal("t2", thickness=4.0, gap=0.8)
    assert image.spacing[0] == pytest.approx(4.8) and image.shape[0] == (96 - 5) // 6 + 1
    np.testing.assert_allclose(image.array[1], case.t2.array[6:11].mean(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(labels.array[1], case.labels.array[8])
    with pytest.raises(LumbarLabError, match="gap"):
        case.mri_sagittal("t2", thickness=4.0, gap=-1.0)


def test_motion_ghosts_copy_the_image_along_the_phase_direction():
    base = sample_params(5)
    quiet = make_case(base.replace(acquisition={**base.acquisition, "mri_ghosting": 0.0}), shape=(48, 60, 64),
                      spacing=3.0, modalities=("t2",), noise=False)
    ghosted = make_case(base.replace(acquisition={**base.acquisition, "mri_ghosting": 0.1}), shape=(48, 60, 64),
                        spacing=3.0, modalities=("t2",), noise=False)
    expected = quiet.t2.array + 0.05 * (np.roll(quiet.t2.array, 20, axis=1) + np.roll(quiet.t2.array, -20, axis=1))
    np.testing.assert_allclose(ghosted.t2.array, expected, rtol=1e-5, atol=1e-3)


def test_adult_discs_show_the_intranuclear_cleft():
    """Over 30, a disc of grade ≥ II has a fibrous band across its nucleus: T2 darker there than the nucleus."""
    case = make_case(sample_params(9, age=55.0, pfirrmann={"L3-L4": 2}), spacing=1.0, noise=False, modalities=("t2",))
    disc = case.labels.array == DISC_LABEL["L3-L4"]
    annulus_inside = disc & (case.material.array == Material.ANNULUS0 + DISCS.index("L3-L4"))
    nucleus = disc & (case.material.array == Material.NUCLUS0 + DISCS.index("L3-L4"))
    centre = ndimage.binary_erosion(disc, iterations=4)  # away from the disc's rim: only the cleft is annulus
    assert (annulus_inside & centre).sum() > 20
    assert np.median(case.t2.array[annulus_inside & centre]) < 0.5 * np.median(case.t2.array[nucleus])


def test_sacralised_l5_reaches_the_ala_over_a_hypoplastic_disc():
    """A transitional L5: its transverse processes touch the sacrum's label, and the L5-S1 disc is half the
    height the same anatomy has without it (Castellvi II/III)."""
    plain = sample_params(12, transitional="none")
    sacral = sample_params(12, transitional="sacralised_L5")
    assert sacral.disc_height_after_degeneration("L5-S1") == pytest.approx(
        0.5 * plain.disc_height_after_degeneration("L5-S1"))
    touching = {}
    for params in (plain, sacral):
        case = make_case(params, spacing=1.0, noise=False, modalities=())
        l5 = ndimage.binary_dilation(case.labels.array == VERSE_LABEL["L5"], iterations=1)
        x = case.grid.axes()[0][:, None, None]
        lateral = np.abs(x) > case.spine.vertebrae["L5"].a + 8.0  # beside the bodies: transverse process vs ala
        touching[params.transitional] = int((l5 & lateral & (case.labels.array == VERSE_LABEL["S1"])).sum())
        assert case.truth["realism"]["transitional"] == params.transitional
    assert touching["none"] == 0 < touching["sacralised_L5"]
    with pytest.raises(LumbarLabError, match="not modelled"):
        sample_params(12, transitional="lumbarised_S1")


def test_no_two_cases_share_an_outline():
    """Waist, posterior notch and process lengths are drawn per vertebra: two seeds of the same size differ."""
    from lumbarlab.phantom.anatomy import build_spine

    a, b = build_spine(sample_params(1)).vertebrae["L3"], build_spine(sample_params(2)).vertebrae["L3"]
    assert (a.waist, a.kidney) != (b.waist, b.kidney)
    assert 0.03 <= a.waist <= 0.09 and 0.03 <= b.waist <= 0.09
    teaching = build_spine(sample_params(1, realism="teaching")).vertebrae["L3"]
    assert teaching.waist == 0.0 and teaching.kidney == 0.0


def test_quadratus_lumborum_and_csf_flow_voids():
    base = sample_params(5)
    case = make_case(base, spacing=1.5, shape=(110, 110, 130), noise=False, modalities=("t2",))
    x = case.grid.axes()[0][:, None, None]
    l3 = case.spine.vertebrae["L3"]
    ql = (case.material.array == Material.MUSCLE) & (np.abs(x - l3.origin[0]) > l3.a + 38.0)
    assert ql.sum() > 200  # muscle lateral to the transverse processes (none in the teaching preset)
    teaching = make_case(base.replace(realism="teaching"), spacing=1.5, shape=(110, 110, 130), noise=False,
                         modalities=())
    assert ((teaching.material.array == Material.MUSCLE) & (np.abs(x - l3.origin[0]) > l3.a + 38.0)).sum() < ql.sum() / 4
    voids = {}
    for flag in (False, True):
        p = base.replace(acquisition={**base.acquisition, "mri_flow_voids": flag})
        c = make_case(p, spacing=1.5, shape=(110, 110, 130), noise=False, modalities=("t2",))
        csf = c.t2.array[c.material.array == Material.CSF]
        voids[flag] = float(np.mean(csf < 0.5 * np.median(csf)))
    assert voids[False] < 0.02 and voids[True] > 0.05
