"""The phantom's anatomy: sizes in population ranges, and pathology measured equal to its parameter."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab.errors import LumbarLabError
from lumbarlab.measure import cobb_angle, meyerding_slip, vertebral_heights
from lumbarlab.phantom import LUMBAR, PhantomParams, make_case, sample_params
from lumbarlab.phantom.anatomy import build_spine
from lumbarlab.phantom.fast2d import lateral_radiograph

SEEDS = [0, 1, 2, 3, 17, 123]


def test_mean_anatomy_has_textbook_sizes():
    """The population-mean spine (scale 1): bodies 25–30 mm high, endplates 40–50 × 30–35 mm,
    growing caudally, discs 8–12 mm."""
    spine = build_spine(PhantomParams())
    sizes = [(spine.vertebrae[n].hm, 2 * spine.vertebrae[n].a, 2 * spine.vertebrae[n].b) for n in LUMBAR]
    for height, width, depth in sizes:
        assert 25.0 <= height <= 30.0 and 40.0 <= width <= 50.0 and 30.0 <= depth <= 35.0
    assert [s[1] for s in sizes] == sorted(s[1] for s in sizes)
    assert [s[2] for s in sizes] == sorted(s[2] for s in sizes)
    for disc in spine.discs.values():
        assert 8.0 <= disc.height <= 12.0


@pytest.mark.parametrize("seed", SEEDS)
def test_vertebral_dimensions_in_population_range(seed):
    """Individuals vary around the mean (size sd 6 %, per level 2.5 %), within ±15 % of the ranges."""
    spine = build_spine(sample_params(seed))
    widths, depths = [], []
    for name in LUMBAR:
        v = spine.vertebrae[name]
        assert 25.0 * 0.85 <= v.hm <= 30.0 * 1.15, (name, v.hm)
        assert 40.0 * 0.85 <= 2 * v.a <= 50.0 * 1.15, (name, 2 * v.a)
        assert 30.0 * 0.85 <= 2 * v.b <= 35.0 * 1.15, (name, 2 * v.b)
        widths.append(2 * v.a)
        depths.append(2 * v.b)
    # endplates grow caudally (allowing 3 % individual variation between neighbours)
    assert widths[-1] > widths[0] and depths[-1] > depths[0]
    for disc in spine.discs.values():
        if disc.name == "T12-L1":
            continue
        if disc.pfirrmann <= 3:  # healthy or mildly degenerated: the population's range
            assert 8.0 * 0.85 <= disc.height <= 12.0 * 1.15, (disc.name, disc.height)
        else:  # Pfirrmann IV/V: narrowed to 72 % / 45 % of the disc's own healthy height
            factor = 0.72 if disc.pfirrmann == 4 else 0.45
            assert disc.height == pytest.approx(spine.params.disc_height[disc.name] * spine.params.scale * factor)


@pytest.mark.parametrize("level,slip", [("L4", 0.0), ("L4", 12.5), ("L4", 37.0), ("L5", 30.0), ("L5", 80.0), ("L3", 55.0)])
def test_slip_measured_on_rendered_corners_equals_parameter(level, slip):
    """Meyerding slip measured on the lateral radiograph's corners: parameter ± 2 %."""
    case = make_case(sample_params(4, slip={level: slip}), shape=(80, 80, 100), spacing=2.0, noise=False)
    lower = {"L3": "L4", "L4": "L5", "L5": "S1"}[level]
    c = case.lateral.corners
    measured = meyerding_slip(c[level], c[lower], spacing=case.lateral.spacing)
    assert measured == pytest.approx(slip, abs=2.0)
    # The fast 2D generator places the same corners.
    fast = lateral_radiograph(sample_params(4, slip={level: slip}), size=128, noise=False)
    assert meyerding_slip(fast.corners[level], fast.corners[lower], fast.spacing) == pytest.approx(slip, abs=2.0)


@pytest.mark.parametrize("cobb", [0.0, 8.0, 20.0, 35.0])
@pytest.mark.parametrize("side", ["left", "right"])
def test_cobb_measured_on_ap_corners_equals_parameter(cobb, side):
    case = make_case(sample_params(9, cobb=cobb, scoliosis_side=side), shape=(64, 64, 96), spacing=2.5, noise=False)
    corners = {n: case.ap.corners[n] for n in ("T12", *LUMBAR)}
    angle, upper, lower = cobb_angle(corners, spacing=case.ap.spacing)
    assert angle == pytest.approx(cobb, abs=1.5)
    if cobb > 0:
        assert (upper, lower) == ("T12", "L5")


@pytest.mark.parametrize("level,loss", [("L1", 25.0), ("L2", 35.0), ("L3", 50.0)])
def test_wedge_fracture_height_loss_from_corners(level, loss):
    """Wedge fracture: 1 − anterior/posterior height on the lateral corners = loss ± 2 %."""
    case = make_case(sample_params(2, fracture={level: loss}), shape=(64, 64, 96), spacing=2.5, noise=False)
    h = vertebral_heights(case.lateral.corners[level], spacing=case.lateral.spacing)
    assert 100 * (1 - h["anterior"] / h["posterior"]) == pytest.approx(loss, abs=2.0)
    truth = case.truth["vertebrae"][level]
    assert truth["height_loss_percent"] == pytest.approx(loss)
    assert truth["genant_grade"] == (1 if loss < 25 else 2 if loss <= 40 else 3)


@pytest.mark.parametrize("realism", ["teaching", "clinical"])
def test_biconcave_fracture_middle_height_on_label_map(realism):
    """A central depression is invisible to corners but measurable on the label map (± 1 voxel); the clinical
    preset's concave endplates take their depth off the centre at both ends."""
    loss = 40.0
    params = sample_params(3, fracture={"L2": loss}, fracture_type="biconcave", realism=realism)
    case = make_case(params, spacing=1.0, noise=False, modalities=("xray",))
    v = case.spine.vertebrae["L2"]
    # walk along the body's own axis through its centre and count L2 voxels
    ts = np.arange(-10.0, v.hp + 10.0, 0.25)
    pts = v.to_world(np.stack([np.zeros_like(ts), np.zeros_like(ts), ts], axis=1))
    idx = np.round(case.labels.world_to_index(pts)).astype(int)
    on = case.labels.array[idx[:, 0], idx[:, 1], idx[:, 2]] == v.label
    middle = on.sum() * 0.25
    concavity = case.truth["realism"]["endplate_concavity_mm"]["L2"]
    assert (concavity > 0.9) == (realism == "clinical")
    assert middle == pytest.approx(min(v.hp, v.ha) * (1 - loss / 100) - 2 * concavity, abs=1.5)
    corners = vertebral_heights(case.lateral.corners["L2"], case.lateral.spacing)
    assert corners["anterior"] == pytest.approx(v.ha, abs=0.5)  # the walls keep their height


def test_labels_agree_with_corners(healthy_case):
    """Every lateral corner sits on (within 1.5 px of) its own vertebra's projected label."""
    rad = healthy_case.lateral
    for name, corners in rad.corners.items():
        label = healthy_case.spine.vertebrae[name].label
        for x, y in corners:
            r0, c0 = int(round(y)), int(round(x))
            if not (0 <= r0 < rad.shape[0] and 0 <= c0 < rad.shape[1]):
                continue  # corner outside the field of view (T12 top, sacrum)
            window = rad.labels[max(r0 - 2, 0): r0 + 3, max(c0 - 2, 0): c0 + 3]
            assert (window == label).any(), (name, x, y)


def test_same_seed_identical_and_different_seeds_differ():
    a = make_case(21, shape=(64, 64, 80), spacing=2.5)
    b = make_case(21, shape=(64, 64, 80), spacing=2.5)
    c = make_case(22, shape=(64, 64, 80), spacing=2.5)
    for name in ("ct", "t1", "t2"):
        np.testing.assert_array_equal(a.volume(name).array, b.volume(name).array)
    np.testing.assert_array_equal(a.labels.array, b.labels.array)
    np.testing.assert_array_equal(a.lateral.image, b.lateral.image)
    assert not np.array_equal(a.labels.array, c.labels.array)
    assert a.truth["vertebrae"]["L3"]["heights_mm"] != c.truth["vertebrae"]["L3"]["heights_mm"]


def test_population_variability_within_ranges():
    lordosis = [make_case(s, shape=(48, 48, 64), spacing=3.5, noise=False).truth["lordosis_L1_S1_deg"] for s in range(8)]
    assert 25.0 < min(lordosis) and max(lordosis) < 75.0
    assert np.std(lordosis) > 1.0  # the seed really varies the curve


@pytest.mark.parametrize("kwargs", [
    {"slip": {"L4": 300}}, {"slip": {"X9": 10}}, {"slip": {"S1": 10}}, {"cobb": -5}, {"cobb": 90},
    {"fracture": {"L1": 95}}, {"bmd": 5}, {"pfirrmann": {"L4-L5": 7}}, {"pfirrmann": {"L9-L10": 2}},
    {"herniation": {"L4-L5": 40}}, {"stenosis": 1.0}, {"not_a_parameter": 1},
])
def test_impossible_parameters_raise_clear_errors(kwargs):
    with pytest.raises(LumbarLabError) as err:
        sample_params(0, **kwargs)
    assert len(str(err.value)) > 20


def test_bad_grids_raise():
    with pytest.raises(LumbarLabError):
        make_case(0, spacing=-1.0)
    with pytest.raises(LumbarLabError):
        make_case(0, shape=(4, 4, 4))
    with pytest.raises(LumbarLabError):
        make_case(0, modalities=("pet",))
