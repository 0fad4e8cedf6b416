"""Issue #18, part 3: a radiograph to its CT — the differentiable DRR against hand-computed line integrals and cone
geometry, its pose gradient against finite differences, and 2D/3D pose estimation on the phantom from perturbed starts,
scored by the mean reprojection distance (mRPD, at the isocentre plane) of the vertebral landmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.phantom.render import MU_WATER_PER_MM
from lumbarlab.register.projection import (
    ConeGeometry,
    Pose,
    bin_image,
    drr,
    estimate_pose,
    gradient_correlation,
    pose_matrix,
    prepare_ct,
    projected_tre,
    projection_distance,
    simulate_radiograph,
)
from lumbarlab.volume import Volume, reorient

SOD, OID = 900.0, 200.0


def _cube(hu_inside: float = 0.0, side_vox: int = 20, n: int = 40, spacing: float = 1.5) -> Volume:
    """Air with a centred cube of ``side_vox`` voxels at ``hu_inside``; the volume's centre is the world origin."""
    hu = np.full((n, n, n), -1000.0, np.float32)
    a = (n - side_vox) // 2
    hu[a:a + side_vox, a:a + side_vox, a:a + side_vox] = hu_inside
    return Volume(hu, (spacing,) * 3, origin=(-(n - 1) * spacing / 2,) * 3)


@pytest.mark.parametrize("view", ["lateral", "ap"])
@pytest.mark.parametrize("hu", [0.0, 1000.0])
def test_drr_of_a_uniform_cube_is_mu_times_path_length(view, hu):
    ct = _cube(hu)
    geo = ConeGeometry(view, sod=SOD, oid=OID, shape=(11, 11), pixel_mm=4.0)
    image = drr(ct, Pose.identity(), geo)
    mu = MU_WATER_PER_MM * (1.0 + hu / 1000.0)
    assert image.shape == (11, 11)
    assert float(image[5, 5]) == pytest.approx(mu * 20 * 1.5, rel=1e-4)       # the central ray: 30 mm of cube
    assert float(image[0, 0]) == pytest.approx(0.0, abs=1e-6)                   # a ray that misses it: air


def test_an_oblique_ray_is_longer_by_one_over_its_cosine():
    """A slab (infinite across the beam) crossed by a ray at angle θ has path thickness / cos θ."""
    hu = np.full((10, 60, 60), 0.0, np.float32)                  # 20 mm of water along x, 120 mm across
    ct = Volume(hu, (2.0, 2.0, 2.0), origin=(-9.0, -59.0, -59.0))
    geo = ConeGeometry("lateral", sod=SOD, oid=OID, shape=(1, 41), pixel_mm=2.0)
    image = drr(ct, Pose.identity(), geo).numpy()[0]
    across = (np.arange(41) - 20) * 2.0                           # mm at the isocentre plane
    expected = MU_WATER_PER_MM * 20.0 * np.hypot(SOD, across) / SOD
    assert np.allclose(image[5:-5], expected[5:-5], rtol=1e-4)


def test_any_orientation_and_spacing_gives_the_same_drr():
    ct = _cube(500.0)
    geo = ConeGeometry("lateral", sod=SOD, oid=OID, shape=(15, 15), pixel_mm=3.0)
    pose = Pose((3.0, -2.0, 5.0), (1.0, 2.0, -1.5))
    a = drr(ct, pose, geo)
    for codes in ("LPS", "PIR"):
        b = drr(reorient(ct, codes), pose, geo)
        assert torch.allclose(a, b, atol=1e-5), codes


def test_projection_is_the_hand_computed_cone_geometry():
    geo = ConeGeometry("lateral", sod=SOD, oid=OID, shape=(101, 51), pixel_mm=1.0, isocentre=(5.0, 20.0, 90.0))
    # a point 60 mm towards the source (x), 30 mm anterior (y) and 40 mm superior (z) of the isocentre
    point = np.array([[65.0, 50.0, 130.0]])
    m = SOD / (SOD - 60.0)                                        # its magnification relative to the isocentre plane
    x, y = geo.project(point)[0]
    assert x == pytest.approx(25 * 1.0 - 30.0 * m)                # columns run anterior → posterior from pixel 0
    assert y == pytest.approx(50 * 1.0 - 40.0 * m)                # rows run superior → inferior
    # on the physical detector (oid beyond the isocentre) the same ray lands (sod + oid) / sod further out
    source = geo.source
    t = (SOD + OID) / (SOD - 60.0)                                # where the ray from the source reaches x = 5 − oid
    hit = source + t * (point[0] - source)
    assert hit[0] == pytest.approx(5.0 - OID)
    assert hit[1] - 20.0 == pytest.approx(30.0 * m * geo.magnification)
    assert geo.magnification == pytest.approx((SOD + OID) / SOD)
    # every pixel's ray crosses the isocentre plane where project() says that pixel is
    pix = geo.pixel_points().reshape(-1, 3)
    rows, cols = np.divmod(np.arange(pix.shape[0]), 51)
    assert np.allclose(geo.project(pix), np.stack([cols, rows], 1) * 1.0)
    # AP: the patient's right is on the image's left
    ap = ConeGeometry("ap", sod=SOD, oid=OID, shape=(3, 3), pixel_mm=1.0)
    assert ap.project([[10.0, 0.0, 0.0]])[0, 0] < ap.project([[-10.0, 0.0, 0.0]])[0, 0]


def test_binned_detector_sees_the_same_places():
    geo = ConeGeometry("ap", shape=(13, 10), pixel_mm=1.0, offset=(2.0, -1.0))
    coarse = geo.binned(3)
    fine = geo.pixel_points()[:12, :9].reshape(4, 3, 3, 3, 3).mean(axis=(1, 3))
    assert np.allclose(coarse.pixel_points(), fine)


def test_binned_image_matches_the_binned_detector():
    """bin_image averages what ConeGeometry.binned sees: a DRR on the fine detector, binned, is close to the DRR of
    the binned detector (the same rays averaged), and the shapes agree for sizes that do not fill a bin."""
    geo = ConeGeometry("lateral", sod=SOD, oid=OID, shape=(13, 10), pixel_mm=1.5)
    fine = drr(_cube(800.0), Pose.identity(), geo).numpy()
    coarse = geo.binned(3)
    assert bin_image(fine, 3).shape == coarse.shape == (4, 3)
    assert bin_image(fine, 3)[1, 1] == pytest.approx(fine[3:6, 3:6].mean())
    with pytest.raises(LumbarLabError, match="factor"):
        bin_image(fine, 0)


def test_reprojection_and_projection_distances_by_hand():
    """projected_tre: the detector distance of the two images at the isocentre scale; projection_distance: the 3D
    distance of the estimated point from the true point's ray (van de Kraats 2005), checked by hand."""
    geo = ConeGeometry("lateral", sod=SOD, oid=OID)
    pts = np.array([[0.0, 0.0, 0.0], [60.0, 30.0, -40.0]])          # one at the isocentre, one 60 mm towards the source
    est = Pose((0.0, 0.0, 0.0), (0.0, 0.0, 2.0))                      # 2 mm superior
    rpd = projected_tre(pts, est, Pose.identity(), geo)
    assert rpd[0] == pytest.approx(2.0)                               # in the isocentre plane: 2 mm
    assert rpd[1] == pytest.approx(2.0 * SOD / (SOD - 60.0))          # nearer the source: magnified
    pd = projection_distance(pts, est, Pose.identity(), geo)
    source = geo.source
    for p, d in zip(pts, pd, strict=True):
        ray = (p - source) / np.linalg.norm(p - source)
        off = p + [0.0, 0.0, 2.0] - source
        assert d == pytest.approx(np.linalg.norm(np.cross(off, ray)))  # |offset × unit ray| = distance to the line
    assert pd[0] == pytest.approx(2.0)
    # a slide along the point's own ray is invisible to both, not to the 3D error
    along = (pts[1] - source) / np.linalg.norm(pts[1] - source) * 15.0
    slide = Pose((0.0, 0.0, 0.0), tuple(along))
    assert projected_tre(pts[1:], slide, Pose.identity(), geo)[0] == pytest.approx(0.0, abs=1e-9)
    assert projection_distance(pts[1:], slide, Pose.identity(), geo)[0] == pytest.approx(0.0, abs=1e-9)


def test_simulated_radiograph_honours_the_device_and_noise():
    ct = _cube(500.0, n=20, side_vox=8, spacing=2.0)
    geo = ConeGeometry("ap", sod=SOD, oid=OID, shape=(9, 9), pixel_mm=2.0)
    clean = simulate_radiograph(ct, Pose.identity(), geo, blur_mm=0.0, device="cpu")
    assert np.allclose(clean, drr(ct, Pose.identity(), geo).numpy())  # no rng, no blur: the DRR itself
    noisy = simulate_radiograph(ct, Pose.identity(), geo, blur_mm=0.0, photons=1e3, rng=np.random.default_rng(0))
    assert 0 < np.abs(noisy - clean).mean() < 0.2


def test_pose_round_trip_and_perturbation_sizes():
    rng = np.random.default_rng(0)
    true = Pose((2.0, -3.0, 4.0), (5.0, -1.0, 2.0), centre=(0.0, 10.0, 90.0))
    start = true.perturbed(10.0, 5.0, rng)
    again = Pose.from_matrix(start.matrix(), start.centre)
    assert np.allclose(again.matrix(), start.matrix())
    m_true, m_start = true.matrix(), start.matrix()
    turn = m_start[:3, :3] @ m_true[:3, :3].T
    assert np.degrees(np.arccos((np.trace(turn) - 1) / 2)) == pytest.approx(5.0)
    posed_centre = true.apply([true.centre])[0]
    assert np.linalg.norm(start.apply([true.centre])[0] - posed_centre) == pytest.approx(10.0)


def test_the_pose_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    from scipy import ndimage

    hu = ndimage.gaussian_filter(rng.normal(0, 1, (24, 24, 24)), 2.0) * 4000.0     # smooth texture
    ct = prepare_ct(Volume(hu.astype(np.float32), (2.0,) * 3, origin=(-23.0,) * 3))
    geo = ConeGeometry("lateral", shape=(16, 16), pixel_mm=2.0)
    target = drr(ct, Pose((1.0, 0.0, 0.0), (0.0, 1.5, -1.0)), geo).detach()

    def loss(params: torch.Tensor) -> torch.Tensor:
        return 1.0 - gradient_correlation(drr(ct, pose_matrix(params[:3], params[3:]), geo), target)

    p = torch.tensor([0.5, 0.3, -0.4, 0.2, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    loss(p).backward()
    for k, h in ((3, 0.05), (4, 0.05), (5, 0.05), (0, 0.05)):      # three translations (mm) and one rotation (°)
        e = torch.zeros(6, dtype=torch.float64)
        e[k] = h
        with torch.no_grad():
            fd = (loss(p + e) - loss(p - e)) / (2 * h)
        assert float(p.grad[k]) == pytest.approx(float(fd), rel=0.05, abs=1e-4), k
    assert abs(float(p.grad[4])) > 1e-3                             # the in-plane translation really is seen


# ---- the phantom: issue #18's must-show ------------------------------------------------------------------------

LEVELS = ("L1", "L2", "L3", "L4", "L5")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: these problems are small, and on a shared CPU more threads only wait for each other
    (a registration took 0.5 s with one thread and 1–5 s with two on the 2-core machine this was written on)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def phantom_problem():
    """The CT the registration moves (2.5 mm, its noise) and a radiograph rendered from a *different* CT of the same
    patient (1.25 mm, its own noise) at a known pose, with the detector's blur and quantum noise."""
    from lumbarlab.phantom import make_case

    moving = make_case(3, shape=(64, 64, 96), spacing=2.5, modalities=("ct",))
    fine = make_case(3, shape=(128, 128, 192), spacing=1.25, modalities=("ct",))
    points = []
    for name in LEVELS:
        v = moving.spine.vertebrae[name]
        points += [v.body_centre()[None], v.to_world(v.lateral_corners_local()), v.to_world(v.ap_corners_local())]
    points = np.concatenate(points)
    geo = ConeGeometry("lateral", sod=SOD, oid=OID, shape=(192, 80), pixel_mm=1.0, isocentre=tuple(points.mean(0)))
    ct = prepare_ct(moving.ct)
    true = Pose((1.0, -2.0, 3.0), (2.0, -3.0, 1.0), centre=tuple(ct.centre))
    target = simulate_radiograph(fine.ct, true, geo, blur_mm=0.6, photons=5e4, rng=np.random.default_rng(0))
    return ct, target, geo, true, points


def _trials(problem, n: int, mm: float, deg: float, seed: int) -> list[tuple[float, float, float]]:
    ct, target, geo, true, points = problem
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        start = true.perturbed(mm, deg, rng)
        fit = estimate_pose(ct, target, geo, start, levels=(8, 4), iterations=(30, 30), lr=1.0)
        out.append((projected_tre(points, start, true, geo).mean(), projected_tre(points, fit.pose, true, geo).mean(),
                    fit.seconds))
    return out


def test_pose_from_a_10mm_5deg_start_lands_within_1mm(phantom_problem):
    results = _trials(phantom_problem, 2, 10.0, 5.0, seed=11)
    for before, after, _ in results:
        assert before > 3.0                                        # the start really is off on the detector
        assert after < 1.0


@pytest.mark.slow
def test_pose_within_1mm_in_90_percent_of_trials(phantom_problem):
    results = _trials(phantom_problem, 20, 10.0, 5.0, seed=12)
    after = np.array([r[1] for r in results])
    assert np.mean(after < 1.0) >= 0.9, after.round(2).tolist()


def test_user_errors_raise_lumbarlab_error():
    geo = ConeGeometry("lateral", shape=(8, 8), pixel_mm=2.0)
    with pytest.raises(LumbarLabError, match="3D CT"):
        drr(np.zeros((10, 10), np.float32), Pose.identity(), geo)                       # a 2D image
    with pytest.raises(LumbarLabError, match="3D"):
        drr(Volume(np.zeros((10, 10), np.float32), (1.0, 1.0)), Pose.identity(), geo)   # Volume refuses it too
    with pytest.raises(LumbarLabError, match="2 voxels"):
        prepare_ct(Volume(np.zeros((1, 10, 10), np.float32), (1.0,) * 3))
    far = _cube(0.0)
    far = Volume(far.array, far.spacing, origin=(0.0, 500.0, 0.0))                     # beside the detector's field
    with pytest.raises(LumbarLabError, match="empty overlap"):
        drr(far, Pose.identity(), geo)
    with pytest.raises(LumbarLabError, match="detector"):
        estimate_pose(_cube(0.0), np.zeros((5, 5)), geo, Pose.identity())
    with pytest.raises(LumbarLabError, match="view"):
        ConeGeometry("oblique")
    with pytest.raises(LumbarLabError, match="three finite"):
        Pose((0.0, 0.0), (0.0, 0.0, 0.0))
