"""Issue #18, deformable CT–CT: phantom posture pairs with every landmark known in both scans, displacement fields
in mm in any grid orientation (checked against MONAI's own Warp), the SimpleITK B-spline baseline and the learned
registration's plumbing — known answers."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics import folded_fraction, target_registration_error
from lumbarlab.register import PointTransform
from lumbarlab.register.deformable import (
    compose,
    displace_points,
    displacement_from_transform,
    field_from_ddf,
    learned_register,
    warp_volume,
)
from lumbarlab.volume import Volume

# grids a real file can have: RAS, LPS (DICOM), PIR (VerSe), each with anisotropic voxels
_DIRECTIONS = {
    "RAS": np.eye(3),
    "LPS": np.diag([-1.0, -1.0, 1.0]),
    "PIR": np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
}


def _rot(deg_z: float) -> np.ndarray:
    a = np.radians(deg_z)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def _blob_volume(direction, spacing=(2.0, 1.5, 2.5), shape=(24, 28, 20)) -> Volume:
    """A smooth blob image (so trilinear sampling is nearly exact) on a grid of the given orientation."""
    vol = Volume(np.zeros(shape, np.float32), spacing, (5.0, -12.0, 30.0), direction)
    world = vol.index_to_world(np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1))
    centre = vol.index_to_world((np.asarray(shape) - 1) / 2)
    r2 = ((world - centre) ** 2 / np.array([80.0, 120.0, 60.0])).sum(-1)
    return vol.with_array(np.exp(-r2 / 8.0).astype(np.float32))


@pytest.mark.parametrize("orientation", list(_DIRECTIONS))
def test_a_transform_as_a_field_maps_points_and_images_alike(orientation):
    fixed = _blob_volume(_DIRECTIONS[orientation])
    t = PointTransform(_rot(4.0), np.array([3.0, -2.0, 1.5]), 0.0)
    u = displacement_from_transform(t, fixed)
    pts = fixed.index_to_world(np.array([[5.0, 6.0, 7.0], [12.3, 14.1, 9.9], [18.0, 20.0, 12.0]]))
    assert np.allclose(displace_points(pts, u, fixed), t(pts), atol=1e-4)
    # the moving scan holds at T(x) what the fixed one holds at x: the same array on the grid moved by T
    moving = Volume(np.asarray(fixed.array), fixed.spacing, tuple(t(np.asarray(fixed.origin))), t.matrix @ fixed.direction)
    warped = warp_volume(moving, u, fixed)
    inner = (slice(3, -3),) * 3
    assert np.nanmax(np.abs(warped.array[inner] - fixed.array[inner])) < 1e-4
    assert np.allclose(compose(t, np.zeros_like(u), fixed), u, atol=1e-4)


@pytest.mark.parametrize("orientation", list(_DIRECTIONS))
def test_a_network_ddf_in_voxels_becomes_millimetres_as_monai_warps_it(orientation):
    """MONAI's Warp moves each voxel by ``ddf`` voxels along the array axes; field_from_ddf must turn that into the
    world-mm field that makes warp_volume give the same image (any orientation, anisotropic voxels)."""
    import torch
    from monai.networks.blocks import Warp

    fixed = _blob_volume(_DIRECTIONS[orientation])
    grid = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in fixed.shape], indexing="ij")
    ddf = np.stack([1.3 + 0.05 * grid[1], -0.7 + 0.0 * grid[0], 0.4 + 0.03 * grid[0]]).astype(np.float32)
    image = torch.from_numpy(np.asarray(fixed.array))[None, None]
    monai_warped = Warp(mode="bilinear", padding_mode="border")(image, torch.from_numpy(ddf)[None])[0, 0].numpy()
    ours = warp_volume(fixed, field_from_ddf(ddf, fixed), fixed).array
    inner = (slice(3, -4),) * 3
    assert np.abs(monai_warped[inner] - ours[inner]).max() < 1e-4
    one = np.zeros((3, *fixed.shape), np.float32)
    one[0] = 1.0
    assert np.allclose(field_from_ddf(one, fixed)[:, 0, 0, 0], fixed.direction[:, 0] * fixed.spacing[0])


def test_field_shape_and_order_are_checked():
    fixed = _blob_volume(np.eye(3))
    with pytest.raises(LumbarLabError, match="shape"):
        displace_points([[0.0, 0, 0]], np.zeros((3, 4, 4, 4)), fixed)
    with pytest.raises(LumbarLabError, match="order"):
        warp_volume(fixed, np.zeros((3, *fixed.shape)), fixed, order=2)


def test_posture_pair_moves_each_vertebra_rigidly():
    """Between two postures every vertebra keeps its shape: its nine landmarks in the fixed scan map onto its nine in
    the moving scan by a rigid motion (residual ~0), while the spine's 45 landmarks do not fit one rigid motion."""
    from lumbarlab.datasets.registration_pairs import posture_pair
    from lumbarlab.register import rigid_from_points

    pair = posture_pair(900_805, flexion_deg=10.0, shift_mm=(2.0, -3.0, 5.0))
    for level in range(5):
        sl = slice(9 * level, 9 * level + 9)
        assert rigid_from_points(pair.fixed_points[sl], pair.moving_points[sl]).rms_mm < 1e-6
    assert rigid_from_points(pair.fixed_points, pair.moving_points).rms_mm > 1.0
    assert pair.fixed.shape == pair.moving.shape == pair.moving_labels.shape
    assert not np.isnan(pair.moving.array).any()
    # the labels moved with the landmarks: L3's label centroid follows its body centre to within its own rotation
    from lumbarlab.measure.landmarks import centroids

    shift = np.subtract(centroids(pair.moving_labels)["L5"], centroids(pair.fixed_labels)["L5"])
    assert np.linalg.norm(shift - (pair.moving_points[36] - pair.fixed_points[36])) < 2.0
    with pytest.raises(LumbarLabError, match="20–80"):
        posture_pair(900_805, flexion_deg=60.0)


class _ZeroField(__import__("torch").nn.Module):
    """A 'network' that predicts no deformation: learned_register must then return the initial transform."""

    def forward(self, moving, fixed):
        import torch

        return moving, torch.zeros((1, 3, *moving.shape[2:]))


def test_learned_register_composes_the_network_field_with_the_initial_transform():
    fixed = _blob_volume(np.eye(3), spacing=(2.0, 2.0, 2.0), shape=(16, 16, 24))
    t = PointTransform(_rot(3.0), np.array([1.0, 2.0, -1.0]), 0.0)
    u, seconds = learned_register(_ZeroField(), fixed, fixed, initial=t)
    assert np.allclose(u, displacement_from_transform(t, fixed), atol=1e-4) and seconds >= 0
    with pytest.raises(LumbarLabError, match="multiple of 8"):
        learned_register(_ZeroField(), fixed, _blob_volume(np.eye(3), shape=(15, 16, 24)))


@pytest.mark.slow
def test_bspline_baseline_improves_on_the_affine_without_folding():
    """The classical baseline on a posture pair (8° less lordosis, a 8 mm table shift): affine first, then the
    B-spline on the spine's neighbourhood lowers the landmarks' mean TRE without folding a voxel."""
    from scipy import ndimage

    from lumbarlab.datasets.registration_pairs import posture_pair
    from lumbarlab.register import register_volumes
    from lumbarlab.register.deformable import bspline_register

    pair = posture_pair(900_800, 8.0, shift_mm=(3.0, -4.0, 6.0))
    before = target_registration_error(pair.fixed_points, pair.moving_points).mean()
    affine = register_volumes(pair.moving, pair.fixed, "affine", levels=(2, 1), iterations=60)
    after_affine = target_registration_error(affine(pair.fixed_points), pair.moving_points).mean()
    mask = ndimage.binary_dilation(np.asarray(pair.fixed_labels.array) > 0, iterations=3)
    u, _ = bspline_register(pair.moving, pair.fixed, grid_mm=40.0, initial=affine, mask=mask)
    after = target_registration_error(displace_points(pair.fixed_points, u, pair.fixed), pair.moving_points).mean()
    assert before > 6.0 and after < 0.9 * after_affine, (before, after_affine, after)
    assert folded_fraction(u, pair.fixed.spacing) < 0.01


def test_vertebra_masks_and_named_points():
    from lumbarlab.register.vertebrae import map_points_by_vertebra, vertebra_masks

    lab = np.zeros((12, 12, 12), np.uint8)
    lab[5:7, 5:7, 5:7] = 23
    masks = vertebra_masks(Volume(lab, (2.0, 2.0, 2.0)), margin_mm=2.0)
    assert list(masks) == ["L4"] and masks["L4"].sum() == 8 + 6 * 4          # grown by one voxel face-wise
    with pytest.raises(LumbarLabError, match="name every point"):
        map_points_by_vertebra([[0.0, 0, 0]], [], {})


@pytest.mark.slow
def test_per_vertebra_rigid_beats_one_transform_for_the_whole_spine():
    """Issue #18's lesson-1 ending: on a posture pair with a table shift, one rigid transform for the spine leaves the
    landmarks ~2 mm off (the spine bent); a rigid transform per vertebra, each on its own bone, brings them within
    1 mm mean TRE — every vertebra moved rigidly, so this is the right model."""
    from lumbarlab.datasets.registration_pairs import posture_pair
    from lumbarlab.register import register_volumes
    from lumbarlab.register.vertebrae import map_points_by_vertebra, per_vertebra_rigid

    pair = posture_pair(900_800, 8.0, shift_mm=(3.0, -4.0, 6.0))
    whole = register_volumes(pair.moving, pair.fixed, "rigid", levels=(2, 1), iterations=60)
    tre_whole = target_registration_error(whole(pair.fixed_points), pair.moving_points)
    found, _ = per_vertebra_rigid(pair.moving, pair.fixed, pair.fixed_labels, initial=whole)
    assert sorted(found) == ["L1", "L2", "L3", "L4", "L5"]
    tre = target_registration_error(map_points_by_vertebra(pair.fixed_points, pair.point_names, found), pair.moving_points)
    assert tre.mean() < 1.0 < tre_whole.mean() and tre.max() < 2.0, (tre.mean(), tre_whole.mean())


@pytest.mark.parametrize("orientation", list(_DIRECTIONS))
def test_warped_label_dice_is_the_dice_of_the_warped_labels(orientation):
    """Known answers in every grid orientation: a zero field leaves the labels where they are (Dice 1); a 1-voxel
    shift along an axis of a 4-voxel-thick slab leaves 3 of 4 slices overlapping (Dice 0.75); the value equals
    metrics.dice of warp_volume's labels, label by label."""
    from lumbarlab.metrics import dice
    from lumbarlab.register.deformable import warped_label_dice

    direction = _DIRECTIONS[orientation]
    a = np.zeros((12, 10, 8), np.int16)
    a[3:7, 2:8, 2:6] = 20
    a[7:10, 2:8, 2:6] = 21
    lab = Volume(a, (2.0, 1.5, 2.5), (5.0, -12.0, 30.0), direction)
    assert warped_label_dice(lab, np.zeros((3, *a.shape)), lab, [20, 21]) == 1.0
    step = PointTransform(np.eye(3), direction @ np.array([2.0, 0.0, 0.0]), 0.0)  # one voxel along the first axis
    assert warped_label_dice(lab, step, lab, [20]) == pytest.approx(0.75)
    warped = np.asarray(warp_volume(lab, step, lab, order=0, cval=0).array)
    by_hand = np.mean([dice(warped == v, a == v) for v in (20, 21)])
    assert warped_label_dice(lab, step, lab, [20, 21]) == pytest.approx(by_hand)
