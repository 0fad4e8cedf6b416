"""Every metric of the survey's Table 2 and what the tasks need beyond it.

Each takes numpy arrays or torch tensors; formulas and references are in the docstrings.

Example:
    >>> from lumbarlab.metrics import dice, roc_auc, cohen_kappa
    >>> dice([0, 1, 1, 0], [0, 1, 0, 0])
    0.6666666666666666
"""

from lumbarlab.metrics.bootstrap import Interval, bootstrap_ci
from lumbarlab.metrics.calibration import expected_calibration_error, reliability_curve
from lumbarlab.metrics.classification import (
    accuracy,
    average_precision,
    balanced_accuracy,
    classification_report,
    confusion_matrix,
    f1_score,
    precision,
    precision_recall_curve,
    recall,
    roc_auc,
    roc_curve,
    sensitivity,
    specificity,
)
from lumbarlab.metrics.detection import (
    COCO_IOU_THRESHOLDS,
    Match,
    box_iou,
    detection_average_precision,
    match_detections,
    mean_average_precision,
)
from lumbarlab.metrics.grading import RSNA_SEVERITY_WEIGHTS, cohen_kappa, smape, weighted_log_loss
from lumbarlab.metrics.landmarks import (
    identification_rate,
    identified,
    localisation_errors,
    mean_radial_error,
    radial_errors,
    success_detection_rate,
)
from lumbarlab.metrics.reconstruction import cnr, psnr, snr, ssim
from lumbarlab.metrics.registration import folded_fraction, jacobian_determinant, target_registration_error
from lumbarlab.metrics.seeds import Spread, paired_seed_difference, seed_spread
from lumbarlab.metrics.segmentation import (
    dice,
    hausdorff95,
    iou,
    mean_dice,
    mean_iou,
    mean_surface_distance,
    surface_distances,
)

__all__ = [
    "confusion_matrix", "accuracy", "precision", "recall", "sensitivity", "specificity", "f1_score",
    "balanced_accuracy", "classification_report", "roc_curve", "roc_auc", "precision_recall_curve",
    "average_precision", "dice", "iou", "mean_dice", "mean_iou", "surface_distances", "hausdorff95",
    "mean_surface_distance", "target_registration_error", "jacobian_determinant", "folded_fraction", "weighted_log_loss", "RSNA_SEVERITY_WEIGHTS", "box_iou", "match_detections", "Match", "detection_average_precision",
    "mean_average_precision", "COCO_IOU_THRESHOLDS", "radial_errors", "mean_radial_error",
    "success_detection_rate", "identification_rate", "identified", "localisation_errors", "cohen_kappa", "smape", "psnr", "ssim", "snr", "cnr", "bootstrap_ci", "Interval",
    "Spread", "seed_spread", "paired_seed_difference",
    "reliability_curve", "expected_calibration_error",
]
