"""Vertebra and disc boxes on radiographs (lumbarlab.datasets.xray_boxes) against hand-made answers, and the
detection metrics on hand-computed detections."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab import metrics as M
from lumbarlab.datasets import xray_boxes as XB
from lumbarlab.errors import LumbarLabError


def _square_spine() -> dict[str, np.ndarray]:
    """Six upright 20 × 16 px bodies with 6 px discs between them, L1 at the top (corners SA, SP, IP, IA)."""
    out = {}
    for k, level in enumerate(("L1", "L2", "L3", "L4", "L5", "S1")):
        top = 10 + 22 * k
        out[level] = np.array([[10, top], [30, top], [30, top + 16], [10, top + 16]], float)
    return out


def test_label_boxes_of_a_hand_made_label_image():
    im = np.zeros((20, 30), np.int16)
    im[2:6, 3:10] = 20  # rows 2–5, cols 3–9
    im[8:15, 12:13] = 21  # one column wide
    im[18, 29] = 22  # one pixel in the corner
    boxes, values = XB.label_boxes(im)
    assert values.tolist() == [20, 21, 22]
    np.testing.assert_array_equal(boxes, [[2.5, 1.5, 9.5, 5.5], [11.5, 7.5, 12.5, 14.5], [28.5, 17.5, 29.5, 18.5]])
    np.testing.assert_array_equal(boxes[:, 2] - boxes[:, 0], [7, 1, 1])  # widths: the number of columns
    boxes, values = XB.label_boxes(im, values=(22, 23, 20))  # order kept, an absent label skipped
    assert values.tolist() == [22, 20]
    with pytest.raises(LumbarLabError, match="2D integer"):
        XB.label_boxes(np.zeros((2, 2, 2), int))


def test_vertebra_and_disc_boxes_from_hand_made_corners():
    spine = _square_spine()
    np.testing.assert_array_equal(XB.vertebra_boxes(spine)[0], [10, 10, 30, 26])
    discs = XB.disc_boxes(spine)
    assert discs.shape == (5, 4)
    # L1's inferior endplate at y = 26, L2's superior one at y = 32
    np.testing.assert_array_equal(discs[0], [10, 26, 30, 32])
    np.testing.assert_array_equal(discs[:, 3] - discs[:, 1], 6)
    boxes, labels = XB.box_targets(spine)
    assert labels.tolist() == [0] * 5 + [1] * 5 and boxes.shape == (10, 4)
    with pytest.raises(LumbarLabError, match="no corners for S1"):
        XB.disc_boxes({k: v for k, v in spine.items() if k != "S1"})


def test_the_landmark_layout_gives_the_same_boxes():
    spine = _square_spine()
    from lumbarlab.datasets import landmarks_from_corners

    points = landmarks_from_corners(spine)
    np.testing.assert_array_equal(XB.box_targets(points)[0], XB.box_targets(spine)[0])
    det = XB.boxes_from_landmarks(points, score=0.7)
    assert det["scores"].tolist() == [0.7] * 10


def test_phantom_disc_boxes_lie_between_the_bodies_endplates():
    from lumbarlab.phantom.fast2d import lateral_radiograph

    for seed in (0, 1, 2):
        rad = lateral_radiograph(seed, size=128)
        v, d = XB.vertebra_boxes(rad.corners), XB.disc_boxes(rad.corners)
        for k in range(5):
            upper = rad.corners[XB.VERTEBRA_LEVELS[k]]
            lower = rad.corners[("L2", "L3", "L4", "L5", "S1")[k]]
            # the disc box starts at the upper body's inferior endplate and ends at the lower body's superior one
            assert d[k, 1] == pytest.approx(min(upper[2:, 1].min(), lower[:2, 1].min()))
            assert d[k, 3] == pytest.approx(max(upper[2:, 1].max(), lower[:2, 1].max()))
            centre = (d[k, 1] + d[k, 3]) / 2
            assert (v[k, 1] + v[k, 3]) / 2 < centre
            if k < 4:
                assert centre < (v[k + 1, 1] + v[k + 1, 3]) / 2
            assert d[k, 3] - d[k, 1] < v[k, 3] - v[k, 1]  # a disc is thinner than a body
        # the body boxes from the corners and from the label image describe the same bodies
        from lumbarlab.labels import VERSE_LABEL

        lab, _ = XB.label_boxes(rad.body_labels, [VERSE_LABEL[n] for n in XB.VERTEBRA_LEVELS])
        assert np.diag(M.box_iou(v, lab)).min() > 0.6


def test_monai_axis_order_swaps_and_matches_the_detector_anchors():
    b = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(XB.to_monai(b), [[2, 1, 4, 3]])
    np.testing.assert_array_equal(XB.from_monai(XB.to_monai(b)), b)
    with pytest.raises(LumbarLabError):
        XB.to_monai(np.zeros((1, 6)))
    from lumbarlab.models import build_model

    det = build_model("detection", spatial_dims=2, size="tiny").eval()
    with torch.no_grad():
        det(torch.rand(1, 1, 32, 96))  # 32 rows, 96 columns
    centres = (det.anchors[0][:, :2] + det.anchors[0][:, 2:]) / 2
    # MONAI's first box coordinate runs along the image's rows (H = 32), the second along its columns (W = 96)
    assert float(centres[:, 0].max()) < 32 and float(centres[:, 1].max()) > 64


def test_box_dataset_moves_boxes_with_the_image():
    images = np.zeros((1, 64, 64), np.float32)
    images[0, 20:30, 12:40] = 1.0
    box = np.array([12, 20, 40, 30], np.float32)
    split = XB.BoxSplit(images, np.zeros((1, 22, 2), np.float32), np.tile(box, (1, 10, 1)),
                        np.zeros((1, 10), np.int64), (1.0, 1.0), "lateral", np.zeros(1))
    plain_image, plain = XB.BoxDataset(split)[0]
    np.testing.assert_array_equal(plain["boxes"][0].numpy(), [20, 12, 30, 40])
    torch.manual_seed(3)
    ds = XB.BoxDataset(split, augment=True, max_shift=6)
    for _ in range(5):
        image, target = ds[0]
        bright = image[0] > (image[0].max() + image[0].min()) / 2
        rows, cols = np.nonzero(bright.numpy())
        y1, x1, y2, x2 = target["boxes"][0].tolist()
        assert (x1, y1, x2, y2) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    images, targets = XB.detection_collate([ds[0], ds[0]])
    assert len(images) == len(targets) == 2


def test_phantom_splits_and_detections_round_trip():
    lat = XB.phantom_box_xrays(2, seed=0, size=96)
    assert lat.images.shape == (2, 96, 96) and lat.view == "lateral"
    ap = XB.phantom_box_xrays(1, seed=5, view="ap")
    assert ap.images.shape == (1, 120, 96) and ap.spacing == (2.0, 2.0)
    assert np.all(ap.boxes[..., 2:] > ap.boxes[..., :2])
    with pytest.raises(LumbarLabError, match="view"):
        XB.phantom_box_xrays(1, seed=0, view="oblique")
    out = [{"boxes": XB.to_monai(torch.from_numpy(lat.boxes[0])), "labels": torch.from_numpy(lat.labels[0]),
            "labels_scores": torch.ones(10)}]
    preds = XB.detections_from_monai(out)
    assert M.mean_average_precision(preds, [lat.truth(0)], M.COCO_IOU_THRESHOLDS) == pytest.approx(1.0)
    with pytest.raises(LumbarLabError, match="score_key"):
        XB.detections_from_monai(out, score_key="scores")


def test_ap_of_perfect_and_shifted_detections_by_hand():
    gt = [{"boxes": [[0, 0, 10, 10], [20, 0, 30, 10]], "labels": [0, 0]}]
    perfect = [{"boxes": gt[0]["boxes"], "scores": [0.9, 0.8], "labels": [0, 0]}]
    assert M.detection_average_precision(perfect, gt, 0, 0.5) == pytest.approx(1.0)
    assert M.mean_average_precision(perfect, gt, M.COCO_IOU_THRESHOLDS) == pytest.approx(1.0)
    # shifted by 1 px: IoU 90/110 = 0.818, a hit at 0.50 … 0.80 (7 of COCO's 10 thresholds), a miss above
    one = [{"boxes": [[1, 0, 11, 10], [21, 0, 31, 10]], "scores": [0.9, 0.8], "labels": [0, 0]}]
    assert M.mean_average_precision(one, gt, M.COCO_IOU_THRESHOLDS) == pytest.approx(0.7)
    # shifted by 5 px: IoU 50/150 = 1/3, a miss at 0.5 (AP 0), a hit at 0.3 (AP 1)
    five = [{"boxes": [[5, 0, 15, 10], [25, 0, 35, 10]], "scores": [0.9, 0.8], "labels": [0, 0]}]
    assert M.detection_average_precision(five, gt, 0, 0.5) == 0.0
    assert M.detection_average_precision(five, gt, 0, 0.3) == pytest.approx(1.0)
    # a thin disc box (20 × 4 px) shifted by the same 1 px down: IoU 3/5 — thin boxes lose IoU fastest
    disc = [{"boxes": [[0, 0, 20, 4]], "labels": [1]}]
    moved = [{"boxes": [[0, 1, 20, 5]], "scores": [0.9], "labels": [1]}]
    assert M.box_iou(moved[0]["boxes"], disc[0]["boxes"])[0, 0] == pytest.approx(60 / 100)
    assert M.mean_average_precision(moved, disc, M.COCO_IOU_THRESHOLDS) == pytest.approx(0.3)
