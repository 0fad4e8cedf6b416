"""Vertebra localisation: VerSe's identification rate on known answers, heatmap targets and their decoding,
the focal loss, centroid patches under augmentation, and centroids that do not depend on a file's orientation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab import metrics
from lumbarlab.datasets.centroids import (
    CentroidCase,
    HeatmapPatchDataset,
    centroid_heatmaps,
    coarsen,
    vertebra_centroids,
)
from lumbarlab.errors import LumbarLabError
from lumbarlab.losses import heatmap_focal_loss
from lumbarlab.postprocess import heatmap_centroids
from lumbarlab.volume import Volume, reorient

TRUTH = {20: (0.0, 0.0, 100.0), 21: (0.0, 0.0, 70.0), 22: (0.0, 0.0, 40.0), 23: (0.0, 0.0, 10.0)}


def test_identification_rate_follows_verse():
    assert metrics.identification_rate(TRUTH, TRUTH) == 1.0
    off = {20: (0, 0, 119.0), 21: (0, 0, 70.0 - 20.5), 22: (0, 0, 40.0), 23: (0, 0, 10.0)}
    # 19 mm off: found; 20.5 mm off (and nearer L3's centre than its own): missed
    assert metrics.identification_rate(off, TRUTH) == 0.75
    assert metrics.identified(off, TRUTH) == {20: True, 21: False, 22: True, 23: True}
    shifted = {v: (x, y, z - 16.0) for v, (x, y, z) in TRUTH.items()}  # within 20 mm, but closer to the next
    assert metrics.identification_rate(shifted, TRUTH) == 0.25  # only L4 (no vertebra below it here) stays nearest
    assert metrics.identification_rate({20: TRUTH[20]}, TRUTH) == 0.25  # the unpredicted three are misses
    assert metrics.identification_rate({**TRUTH, 24: (0, 0, -20.0)}, TRUTH) == 1.0  # an extra does not count
    with pytest.raises(LumbarLabError):
        metrics.identification_rate(TRUTH, {})
    errors = metrics.localisation_errors(off, TRUTH)
    assert errors[20] == pytest.approx(19.0) and errors[21] == pytest.approx(20.5)


def _two_boxes(spacing=(2.0, 2.0, 2.0)) -> Volume:
    a = np.zeros((24, 20, 48), np.uint8)
    a[8:14, 6:12, 4:12] = 24
    a[9:15, 7:13, 26:36] = 22
    return Volume(a, spacing, (-20.0, 10.0, -40.0))


@pytest.mark.parametrize("codes", ["RAS", "LPS", "PIR", "ASL"])
def test_centroids_are_world_positions_whatever_the_orientation(codes):
    labels = _two_boxes()
    expected = vertebra_centroids(labels, (22, 24))
    assert set(expected) == {22, 24}
    assert np.allclose(expected[24], labels.index_to_world(np.array([10.5, 8.5, 7.5])))
    turned = vertebra_centroids(reorient(labels, codes), (22, 24))
    for v in (22, 24):
        assert np.allclose(turned[v], expected[v], atol=1e-6)


def test_heatmaps_decode_to_their_centroids():
    grid = Volume(np.zeros((30, 24, 40), np.uint8), (4.0, 4.0, 4.0), (-60.0, -40.0, -80.0))
    truth = {19: np.array([1.3, 2.2, 70.9]), 22: np.array([-3.0, 5.0, -20.0])}
    maps = centroid_heatmaps(grid, truth, (19, 20, 22))
    assert maps.shape == (3, 30, 24, 40) and maps[1].max() == 0.0  # L1 was not given: no peak
    found = heatmap_centroids(maps, grid, (19, 20, 22), threshold=0.5)
    assert set(found) == {19, 22}
    for v in found:  # the nearest voxel: at most half a voxel's diagonal away
        assert np.linalg.norm(found[v] - truth[v]) <= 0.5 * 4.0 * np.sqrt(3) + 1e-6
    with pytest.raises(LumbarLabError):
        heatmap_centroids(maps[:2], grid, (19, 20, 22))


def test_focal_loss_rewards_a_peak_in_the_right_place_and_nothing_elsewhere():
    target = torch.zeros(1, 2, 8, 8, 8)
    target[0, 0, 4, 4, 4] = 1.0
    right = torch.full((1, 2, 8, 8, 8), -8.0)
    right[0, 0, 4, 4, 4] = 8.0
    wrong = torch.full((1, 2, 8, 8, 8), -8.0)
    wrong[0, 0, 1, 1, 1] = 8.0
    ghost = right.clone()
    ghost[0, 1, 2, 2, 2] = 8.0  # a peak in the channel of a vertebra that is not there
    assert float(heatmap_focal_loss(right, target)) < 0.01
    assert float(heatmap_focal_loss(wrong, target)) > 5.0
    assert float(heatmap_focal_loss(ghost, target)) > 5.0
    # by hand: one peak at p = sigmoid(0) = 0.5 and everything else certain → (1 − 0.5)² · log 2
    half = right.clone()
    half[0, 0, 4, 4, 4] = 0.0
    assert float(heatmap_focal_loss(half, target)) == pytest.approx(0.25 * np.log(2), rel=1e-3)


def test_patches_hold_the_heatmap_peak_where_the_image_marks_the_centre():
    """Mark each centroid with a bright voxel: after crops, mirrors and ends of scan, the image's brightest voxel
    and the heatmap's peak stay together."""
    grid = Volume(np.zeros((40, 36, 60), np.float32), (4.0, 4.0, 4.0))
    centroids = {20: grid.index_to_world(np.array([20.0, 18.0, 40.0])),
                 22: grid.index_to_world(np.array([21.0, 17.0, 20.0]))}
    for ijk in ((20, 18, 40), (21, 17, 20)):
        grid.array[ijk] = 1.0
    data = HeatmapPatchDataset([CentroidCase(grid, centroids)], (20, 21, 22), patch=(16, 16, 24), per_volume=40,
                               seed=3, augment=True)
    seen = 0
    for i in range(len(data)):
        image, maps = data[i]
        assert image.shape == (1, 16, 16, 24) and maps.shape == (3, 16, 16, 24)
        assert float(maps[1].max()) == 0.0  # L2 is not in the case
        for channel in (0, 2):
            peak = maps[channel]
            if float(peak.max()) >= 0.99:
                at = tuple(int(v) for v in np.unravel_index(int(peak.argmax()), peak.shape))
                assert float(image[0][at]) > 0.5  # the marked voxel (intensity changes keep it bright)
                seen += 1
    assert seen >= 20


def test_coarsen_keeps_the_world_position_of_a_structure():
    fine = _two_boxes((2.0, 2.0, 2.0))
    image = fine.with_array(np.where(fine.array == 22, 400.0, -100.0).astype(np.float32))
    coarse = coarsen(image, 2)
    assert coarse.spacing == (4.0, 4.0, 4.0) and coarse.shape == (12, 10, 24)
    inside = coarse.array > 150.0
    centre = coarse.index_to_world(np.argwhere(inside).mean(axis=0))
    assert np.linalg.norm(centre - vertebra_centroids(fine, (22,))[22]) < 2.0  # mm
    with pytest.raises(LumbarLabError):
        coarsen(image, 0)


def test_chain_naming_repairs_channels_that_count_wrong():
    """The failure the trained network shows: L1's channel peaks on T12 and L2's on L1, and no channel is highest on
    L2. The places are right, so naming them in order from the most consistent run recovers every vertebra."""
    from lumbarlab.postprocess import chain_centroids

    grid = Volume(np.zeros((20, 20, 60), np.uint8), (4.0, 4.0, 4.0))
    values = (19, 20, 21, 22, 23)
    z_of = {19: 52, 20: 43, 21: 34, 22: 25, 23: 16}  # voxels: 36 mm apart, head first
    truth = {v: grid.index_to_world(np.array([10.0, 10.0, z])) for v, z in z_of.items()}
    maps = centroid_heatmaps(grid, truth, values)
    shifted = maps.copy()
    shifted[1] = 0.9 * maps[0]          # "L1" on T12
    shifted[2] = 0.8 * maps[1]          # "L2" on L1; nothing strongest on L2 but its weaker neighbours' tails
    shifted[0] *= 0.5
    shifted[2] += 0.4 * maps[2]
    raw = heatmap_centroids(shifted, grid, values, threshold=0.3)
    assert metrics.identification_rate(raw, truth) < 0.8  # the channels alone misname the upper levels
    named = chain_centroids(shifted, grid, values)
    assert metrics.identification_rate(named, truth) == 1.0
    assert max(metrics.localisation_errors(named, truth).values()) < 1.0  # mm
    assert chain_centroids(np.zeros_like(maps), grid, values) == {}  # nothing above the threshold: nothing named
