"""What each task means for a zoo model: its loss, the validation metric that picks the best epoch, what its
predictor returns, how its output is decoded (landmark heatmaps → points) and how it is scored on a test split.

Example:
    >>> TASKS["segmentation"].output, TASKS["landmarks"].output, TASKS["reconstruction"].output
    ('labels', 'logits', 'image')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lumbarlab.errors import LumbarLabError

__all__ = ["TaskSpec", "TASKS", "loss_function", "selection_metric", "predict_landmarks", "DECODE_WINDOW",
           "evaluate_classification", "evaluate_segmentation", "evaluate_landmarks", "evaluate_volumes",
           "evaluate_vertebra_volumes", "evaluate_denoising",
           "predict_centroids", "evaluate_centroids", "evaluate_density", "evaluate_mri_recon", "segment_sagittal_stack",
           "evaluate_mri_spine", "grading_loss", "split_heads", "evaluate_grading", "evaluate_registration"]


@dataclass(frozen=True)
class TaskSpec:
    """A task's predictor output ("probabilities", "labels", "logits" or "image")."""

    output: str


TASKS: dict[str, TaskSpec] = {
    "classification": TaskSpec("probabilities"),
    "segmentation": TaskSpec("labels"),
    "landmarks": TaskSpec("logits"),
    "reconstruction": TaskSpec("image"),
    "centroids": TaskSpec("logits"),
    "grading": TaskSpec("logits"),
    "registration": TaskSpec("field"),
}


def loss_function(task: str, heatmap_weight: float = 1.0, batch_dice: bool = False):
    """The training loss of a task: cross-entropy, Dice + cross-entropy (MONAI), DSNT (landmarks), or the mean
    squared error to the clean image (reconstruction: what PSNR measures, so minimising it maximises PSNR).

    ``batch_dice``: one Dice per class over the whole batch instead of per patch (MONAI's ``batch=True``). A 3D
    patch holds two to four of the seven vertebrae; per patch, every absent class scores a Dice of 0 whatever
    the network does, and that constant swamps the classes that are there (nnU-Net computes its Dice over the
    batch for the same reason)."""
    if task == "classification":
        return torch.nn.functional.cross_entropy
    if task == "segmentation":
        from monai.losses import DiceCELoss

        dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, batch=batch_dice)
        return lambda logits, masks: dice_ce(logits, masks[:, None])
    if task == "reconstruction":
        return torch.nn.functional.mse_loss
    if task == "centroids":
        from lumbarlab.losses import heatmap_focal_loss

        return heatmap_focal_loss
    if task == "grading":
        return grading_loss
    if task == "registration":
        from lumbarlab.datasets.registration_pairs import PAIR_CLASSES
        from lumbarlab.losses import RegistrationLoss

        return RegistrationLoss(classes=len(PAIR_CLASSES) + 1)
    if task != "landmarks":
        raise LumbarLabError(f"no zoo task {task!r}; choose from {', '.join(TASKS)}.")
    from lumbarlab.losses import landmark_loss

    if heatmap_weight == 1.0:
        return landmark_loss
    return lambda logits, coords: landmark_loss(logits, coords, heatmap_weight=heatmap_weight)


def selection_metric(task: str, loss_fn):
    """Validation metric (higher is better) that picks the best epoch: accuracy for classification, the negative
    loss otherwise."""
    if task == "classification":
        def metric(out, y):
            return float((out.argmax(1) == y).float().mean())
    else:
        def metric(out, y):
            return -float(loss_fn(out, y))
    return metric


#: Soft-argmax window (± pixels around each map's peak) used to decode the landmark model. The recipe's
#: heavy heatmap term makes the maps single peaks, and the window drops what little mass strays far away
#: (the teaching phantom's test split, 2026-11: MRE 0.217 mm windowed against 0.225 mm over the whole map).
#: None decodes over the whole map, as the DSNT distance term does in training.
DECODE_WINDOW: int | None = 6


def predict_landmarks(model: torch.nn.Module, images: np.ndarray, batch_size: int = 16,
                      window: int | None = DECODE_WINDOW) -> np.ndarray:
    """(N, H, W) or (H, W) images → (N, 22, 2) or (22, 2) (x, y) landmark pixels by soft-argmax
    (over the whole map by default, as in training; ``window``: within ± pixels of each map's peak).
    One image runs the model eager, a batch through its frozen trace."""
    from lumbarlab.infer import Predictor
    from lumbarlab.models import decode_heatmaps

    # A Predictor on a CPU traces and freezes its model on the first call (~0.3 s for the landmark U-Net), which
    # pays off over a batch but not for a panel's one image (eager: ~11 ms a 256² image against the trace's
    # ~15 ms; 2 CPU cores). A fresh Predictor per call: a trace kept between calls would keep old weights.
    one_image = np.ndim(images) == 2
    logits = Predictor(model, spatial_dims=2, output="logits", batch_size=batch_size,
                       freeze=False if one_image else None)(images)
    single = logits.ndim == 3
    coords = decode_heatmaps(torch.from_numpy(logits[None] if single else logits), beta=1.0, window=window).numpy()
    return coords[0] if single else coords


def _batches(images: np.ndarray, size: int = 32):
    for i in range(0, len(images), size):
        yield torch.from_numpy(images[i : i + size])[:, None]


@torch.inference_mode()
def evaluate_classification(model: torch.nn.Module, split) -> dict[str, float]:
    """AUC, accuracy, sensitivity and specificity (threshold 0.5) on an X-ray split."""
    from lumbarlab import metrics

    scores = np.concatenate([torch.softmax(model(x), 1)[:, 1].numpy() for x in _batches(split.images)])
    y, pred = split.labels, (scores >= 0.5).astype(int)
    return {"auc": metrics.roc_auc(y, scores), "accuracy": metrics.accuracy(y, pred),
            "sensitivity": metrics.recall(y, pred), "specificity": metrics.specificity(y, pred)}


@torch.inference_mode()
def evaluate_segmentation(model: torch.nn.Module, split) -> dict[str, float]:
    """Mean Dice and IoU over body and sacrum per image, averaged, and each class's Dice, on an X-ray split."""
    from lumbarlab import metrics

    pred = np.concatenate([model(x).argmax(1).numpy() for x in _batches(split.images)])
    per = [metrics.mean_dice(t, p, labels=[1, 2], per_class=True) for t, p in zip(split.masks, pred, strict=True)]
    return {"mean_dice": float(np.mean([np.mean(list(d.values())) for d in per])),
            "mean_iou": float(np.mean([metrics.mean_iou(t, p, labels=[1, 2]) for t, p in zip(split.masks, pred, strict=True)])),
            "dice_body": float(np.mean([d[1] for d in per])), "dice_sacrum": float(np.mean([d[2] for d in per]))}


@torch.inference_mode()
def evaluate_landmarks(model: torch.nn.Module, split) -> dict[str, float]:
    """Mean radial error (mm), success detection rates at 2 and 4 mm, and the mean absolute error of the
    Meyerding slip of L4 and L5 from the predicted corners (percentage points), on an X-ray split."""
    from lumbarlab import metrics
    from lumbarlab.datasets import corners_to_dict
    from lumbarlab.measure.core import meyerding_slip

    coords = predict_landmarks(model, split.images)
    mre, _ = metrics.mean_radial_error(coords, split.corners, split.spacing)
    sdr = metrics.success_detection_rate(coords, split.corners, split.spacing, thresholds=(2.0, 4.0))
    slip_err, unmeasurable = [], 0
    for p, t in zip(coords, split.corners, strict=True):
        pc, tc = corners_to_dict(p), corners_to_dict(t)
        for upper, lower in (("L4", "L5"), ("L5", "S1")):
            try:
                measured = meyerding_slip(pc[upper], pc[lower], split.spacing)
            except LumbarLabError:  # collapsed corners (an untrained model) cannot be measured
                unmeasurable += 1
                continue
            slip_err.append(abs(measured - meyerding_slip(tc[upper], tc[lower], split.spacing)))
    return {"mre_mm": mre, "sdr_2mm": sdr[2.0], "sdr_4mm": sdr[4.0],
            # 100 percentage points stands for "nothing measurable" (keeps the manifest valid JSON)
            "slip_mae_percent": float(np.mean(slip_err)) if slip_err else 100.0,
            "slip_unmeasurable": unmeasurable / (2 * len(coords))}


@torch.inference_mode()
def evaluate_volumes(model: torch.nn.Module, volumes, roi: tuple[int, ...]) -> dict[str, float]:
    """3D segmentation on whole volumes (a :class:`lumbarlab.datasets.VolumeDataset` with ``classes``) by sliding
    windows of ``roi``: per-class Dice averaged over the cases, their mean (``mean_dice``) and mean IoU."""
    from lumbarlab import metrics
    from lumbarlab.infer import Predictor

    predictor = Predictor(model, spatial_dims=3, output="labels", roi_size=tuple(roi), device="cpu")
    n_classes = len(volumes.classes or ()) or None
    dice, iou = [], []
    for i in range(len(volumes)):
        image, target = volumes[i]
        pred = predictor(image[0].numpy()[None])[0]
        labels = list(range(1, (n_classes or int(target.max())) + 1))
        d = metrics.mean_dice(target.numpy(), pred, labels=labels, per_class=True)
        dice.append([d[c] for c in labels])
        iou.append(metrics.mean_iou(target.numpy(), pred, labels=labels))
    per_class = np.mean(dice, axis=0)
    return {"mean_dice": float(per_class.mean()), "mean_iou": float(np.mean(iou)),
            **{f"dice_class{c}": float(v) for c, v in enumerate(per_class, start=1)}}


@torch.inference_mode()
def evaluate_vertebra_volumes(model: torch.nn.Module, volumes, roi: tuple[int, ...],
                              flips: tuple[int, ...] = ()) -> dict[str, float]:
    """Multi-label vertebra segmentation on whole volumes, as a user's scan runs: sliding windows of ``roi``
    (overlap 25 %; averaged with the input mirrored along ``flips``), then
    :func:`lumbarlab.postprocess.clean_vertebra_labels` (classes 1, 2, … are the
    vertebrae from head to feet). Per class: Dice averaged over the cases that hold it (a vertebra the field of
    view misses counts nowhere, as in VerSe); ``mean_dice`` is their mean; ``id_rate`` the share of true
    vertebrae whose predicted label's centroid lies within 20 mm of the true one (VerSe's identification rate,
    from the masks); ``raw_mean_dice`` the same Dice before the clean-up.
    """
    from lumbarlab import metrics
    from lumbarlab.infer import Predictor
    from lumbarlab.postprocess import clean_vertebra_labels

    predictor = Predictor(model, spatial_dims=3, output="labels", roi_size=tuple(roi), device="cpu", flips=flips)
    n_classes = len(volumes.classes or ())
    order = tuple(range(1, n_classes + 1))
    dice: dict[int, list[float]] = {c: [] for c in order}
    raw: dict[int, list[float]] = {c: [] for c in order}
    hits, total = 0, 0
    for i in range(len(volumes)):
        image, target = volumes[i]
        grid = volumes.volume(i).labels
        pred = predictor(image[0].numpy()[None])[0].astype(np.uint8)
        clean = clean_vertebra_labels(grid.with_array(pred), order).array
        truth = target.numpy()
        for c in order:
            if not (truth == c).any():
                continue
            dice[c].append(metrics.dice(truth == c, clean == c))
            raw[c].append(metrics.dice(truth == c, pred == c))
            total += 1
            if (clean == c).any():
                t = grid.index_to_world(np.argwhere(truth == c).mean(axis=0))
                p = grid.index_to_world(np.argwhere(clean == c).mean(axis=0))
                hits += int(np.linalg.norm(t - p) <= 20.0)
    per_class = {c: float(np.mean(v)) for c, v in dice.items() if v}
    return {"mean_dice": float(np.mean(list(per_class.values()))),
            "raw_mean_dice": float(np.mean([np.mean(v) for v in raw.values() if v])),
            "id_rate": hits / max(total, 1),
            **{f"dice_class{c}": v for c, v in per_class.items()}}


def segment_sagittal_stack(predictor, stack: np.ndarray, grid, n_vertebrae: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A sagittal MRI stack (slabs along axis 0, normalised) → (class map after the vertebra clean-up, class
    probabilities (C, X, Y, Z)): the 2.5D ``predictor`` slab by slab (:func:`lumbarlab.infer.predict_slicewise`),
    then :func:`lumbarlab.postprocess.clean_vertebra_labels` in 3D on ``grid`` (the stack's geometry), with
    classes 1 … ``n_vertebrae`` the vertebrae from head to feet; disc and canal classes are kept as predicted."""
    from lumbarlab.infer import predict_slicewise
    from lumbarlab.postprocess import clean_vertebra_labels

    context = (predictor.in_channels - 1) // 2
    prob = predict_slicewise(predictor, stack, context)
    raw = prob.argmax(0).astype(np.uint8)
    clean = clean_vertebra_labels(grid.with_array(raw), tuple(range(1, n_vertebrae + 1)),
                                  min_volume_mm3=500.0).array
    return clean, prob


def evaluate_mri_spine(model: torch.nn.Module, pairs, classes: tuple[int, ...], roi: tuple[int, ...],
                       in_channels: int = 3) -> dict[str, float]:
    """Vertebrae, discs and canal on whole sagittal stacks, as ``lumbarlab segment --model mri-spine`` runs them
    (:func:`segment_sagittal_stack`, sliding windows of ``roi``). Dice per structure on each stack, averaged over
    the stacks that hold it; ``mean_dice`` over all structures, ``dice_vertebrae``, ``dice_discs``,
    ``dice_canal`` over the groups SPIDER reports (van der Graaf et al. 2024), ``raw_mean_dice`` before the
    clean-up, and ``id_rate`` (a true vertebra or disc whose predicted label's centroid lies within 20 mm of the
    true one, VerSe's rule)."""
    from lumbarlab import metrics
    from lumbarlab.datasets.mri import normalize_mri
    from lumbarlab.datasets.mri_spine import to_classes
    from lumbarlab.infer import Predictor
    from lumbarlab.labels import CANAL_LABEL, DISC_LABEL

    predictor = Predictor(model, spatial_dims=2, in_channels=in_channels, output="probabilities",
                          roi_size=tuple(roi), device="cpu")
    n_vert = sum(1 for c in classes if c < 100)
    order = tuple(range(1, len(classes) + 1))
    dice: dict[int, list[float]] = {c: [] for c in order}
    raw: dict[int, list[float]] = {c: [] for c in order}
    hits = total = 0
    for pair in pairs:
        grid = pair.labels
        clean, prob = segment_sagittal_stack(predictor, normalize_mri(pair.image.array), grid, n_vert)
        pred = prob.argmax(0)
        truth = to_classes(grid.array, classes)
        for c in order:
            if not (truth == c).any():
                continue
            dice[c].append(metrics.dice(truth == c, clean == c))
            raw[c].append(metrics.dice(truth == c, pred == c))
            if classes[c - 1] == CANAL_LABEL:
                continue
            total += 1
            if (clean == c).any():
                t = grid.index_to_world(np.argwhere(truth == c).mean(axis=0))
                p = grid.index_to_world(np.argwhere(clean == c).mean(axis=0))
                hits += int(np.linalg.norm(t - p) <= 20.0)
    per = {classes[c - 1]: float(np.mean(v)) for c, v in dice.items() if v}
    discs = set(DISC_LABEL.values())
    return {"mean_dice": float(np.mean(list(per.values()))),
            "raw_mean_dice": float(np.mean([np.mean(v) for v in raw.values() if v])),
            "dice_vertebrae": float(np.mean([d for v, d in per.items() if v < 100])),
            "dice_discs": float(np.mean([d for v, d in per.items() if v in discs])),
            "dice_canal": per.get(CANAL_LABEL, float("nan")),
            "id_rate": hits / max(total, 1),
            **{f"dice_label{v}": d for v, d in per.items()}}


def split_heads(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """A grader's logits (N, 10) → one block per head of :data:`lumbarlab.datasets.mri_discs.HEADS`."""
    from lumbarlab.datasets.mri_discs import HEADS

    out, start = {}, 0
    for name, k in HEADS.items():
        out[name] = logits[:, start:start + k]
        start += k
    if start != logits.shape[1]:
        raise LumbarLabError(f"a grader gives {start} logits ({', '.join(HEADS)}), got {logits.shape[1]}.")
    return out


def grading_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The sum over heads (Pfirrmann, herniation, stenosis) of each head's cross-entropy with its grade
    (``targets`` (N, 3)). Stenosis is weighted as RSNA 2024 scores it (1, 2, 4 for normal/mild, moderate,
    severe), so a missed severe stenosis costs what it costs in the challenge."""
    from lumbarlab.metrics import RSNA_SEVERITY_WEIGHTS

    heads = split_heads(logits)
    ce = torch.nn.functional.cross_entropy
    weights = torch.tensor(RSNA_SEVERITY_WEIGHTS, dtype=logits.dtype, device=logits.device)
    return (ce(heads["pfirrmann"], targets[:, 0]) + ce(heads["herniation"], targets[:, 1])
            + ce(heads["stenosis"], targets[:, 2], weight=weights))


@torch.inference_mode()
def evaluate_grading(model: torch.nn.Module, stacks) -> dict[str, float]:
    """Disc grading on the held-out stacks' discs, crops from the true disc frames: Pfirrmann quadratic-weighted
    κ, accuracy and balanced accuracy; herniation AUC and accuracy; stenosis quadratic κ and RSNA 2024's
    sample-weighted log loss (:func:`lumbarlab.metrics.weighted_log_loss`)."""
    from lumbarlab import metrics
    from lumbarlab.datasets.mri_discs import DiscCropDataset

    data = DiscCropDataset(list(stacks))
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.stack([data[i][1] for i in range(len(data))]).numpy()
    logits = torch.cat([model(x[i:i + 64]) for i in range(0, len(x), 64)])
    p = {k: torch.softmax(v, 1).numpy() for k, v in split_heads(logits).items()}
    pf, st = p["pfirrmann"].argmax(1), p["stenosis"].argmax(1)
    return {"pfirrmann_kappa": metrics.cohen_kappa(y[:, 0], pf, "quadratic", num_classes=5),
            "pfirrmann_accuracy": metrics.accuracy(y[:, 0], pf),
            "pfirrmann_balanced_accuracy": metrics.balanced_accuracy(y[:, 0], pf),
            "herniation_auc": metrics.roc_auc(y[:, 1], p["herniation"][:, 1]),
            "herniation_accuracy": metrics.accuracy(y[:, 1], p["herniation"].argmax(1)),
            "stenosis_kappa": metrics.cohen_kappa(y[:, 2], st, "quadratic", num_classes=3),
            "stenosis_accuracy": metrics.accuracy(y[:, 2], st),
            "stenosis_weighted_log_loss": metrics.weighted_log_loss(y[:, 2], p["stenosis"]),
            "discs": float(len(y))}


#: Relative doses of the denoising test (reference 1.0): quarter, half and full dose.
TEST_DOSES: tuple[float, ...] = (0.25, 0.5, 1.0)
_DOSE_NAMES = {0.25: "quarter", 0.5: "half", 1.0: "full"}


def evaluate_denoising(model: torch.nn.Module, pairs_by_dose: dict) -> dict[str, float]:
    """Low-dose CT denoising on whole axial slices, per dose (``{dose: [DosePair, …]}``, the same patients at
    every dose), by :func:`lumbarlab.denoise.denoising_scores`: PSNR and SSIM against the noise-free image over
    the CT window −1000…2000 HU, of the noisy input and of the model's output; the PSNR gain in dB; the bone HU
    bias inside the L1–L5 trabecular cores. Keys: ``psnr_noisy_quarter``, ``psnr_quarter``,
    ``psnr_gain_quarter``, ``ssim_noisy_quarter``, ``ssim_quarter``, ``bone_hu_bias_quarter``, and the same for
    half and full dose.
    """
    from lumbarlab.denoise import denoising_scores, network_denoiser

    denoise = network_denoiser(model)
    out: dict[str, float] = {}
    for dose, pairs in pairs_by_dose.items():
        name = _DOSE_NAMES.get(float(dose), f"dose{dose:g}")
        scores = denoising_scores(pairs, denoise)
        for key in ("psnr_noisy", "psnr", "ssim_noisy", "ssim", "psnr_gain", "bone_hu_bias"):
            out[f"{key}_{name}"] = scores[key]
        if not np.isfinite(out[f"bone_hu_bias_{name}"]):
            out[f"bone_hu_bias_{name}"] = 0.0  # no level measurable (keeps the manifest valid JSON)
    return out


@torch.inference_mode()
def predict_centroids(model: torch.nn.Module, image: np.ndarray, grid, values: tuple[int, ...],
                      roi: tuple[int, ...], threshold: float | None = None,
                      naming: str = "chain") -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Vertebra centroids (label value → world mm) and the heatmaps (C, X, Y, Z) of a localisation network on one
    normalised volume on ``grid`` (sliding windows of ``roi``). ``naming="chain"``: where any channel peaks, named
    in order (:func:`lumbarlab.postprocess.chain_centroids`, threshold 0.2 by default); ``"channels"``: each
    channel's own peak (:func:`lumbarlab.postprocess.heatmap_centroids`, threshold 0.3 by default)."""
    from lumbarlab.infer import Predictor
    from lumbarlab.postprocess import chain_centroids, heatmap_centroids

    if naming not in ("chain", "channels"):
        raise LumbarLabError(f"naming must be 'chain' or 'channels', got {naming!r}.")

    logits = Predictor(model, spatial_dims=3, output="logits", roi_size=tuple(roi), device="cpu")(image[None])[0]
    probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    if naming == "chain":
        found = chain_centroids(probabilities, grid, values, 0.2 if threshold is None else threshold)
    else:
        found = heatmap_centroids(probabilities, grid, values, 0.3 if threshold is None else threshold)
    return found, probabilities.astype(np.float32)


def evaluate_centroids(model: torch.nn.Module, cases, values: tuple[int, ...], roi: tuple[int, ...],
                       normalize) -> dict[str, float]:
    """Vertebra localisation on whole volumes (:class:`lumbarlab.datasets.centroids.CentroidCase` s; centres named
    as a chain, :func:`predict_centroids`): VerSe's
    identification rate over all true vertebrae of all cases (:func:`lumbarlab.metrics.identification_rate`),
    the mean and the largest localisation error (mm) of the vertebrae found, the share of true vertebrae with no
    prediction, the false detections per scan (a vertebra named that the scan does not hold), and the
    identification rate per level (``id_<value>``)."""
    from lumbarlab import metrics

    hits: dict[int, list[int]] = {v: [] for v in values}
    errors, missed, extra, total = [], 0, 0, 0
    for case in cases:
        image = np.asarray(normalize(np.asarray(case.image.array, np.float32)), np.float32)
        found, _ = predict_centroids(model, image, case.image, values, roi)
        truth = {v: c for v, c in case.centroids.items() if v in values}
        for v, hit in metrics.identified(found, truth).items():
            hits[v].append(int(hit))
        errors += list(metrics.localisation_errors(found, truth).values())
        missed += sum(v not in found for v in truth)
        extra += sum(v not in truth for v in found)
        total += len(truth)
    return {"id_rate": sum(sum(h) for h in hits.values()) / max(total, 1),
            "mean_error_mm": float(np.mean(errors)) if errors else 1000.0,
            "max_error_mm": float(np.max(errors)) if errors else 1000.0,
            "missed": missed / max(total, 1), "false_per_scan": extra / max(len(cases), 1),
            **{f"id_{v}": float(np.mean(h)) for v, h in hits.items() if h}}


@torch.inference_mode()
def evaluate_density(model: torch.nn.Module, split, normalize) -> dict[str, float]:
    """Bone-density classification of vertebra crops (a :class:`lumbarlab.datasets.BoneDensitySplit`; classes of
    :data:`lumbarlab.datasets.DENSITY_CLASSES` from the phantom's true density): accuracy over the three classes,
    quadratic-weighted κ (the classes are ordered), the AUC of P(osteoporosis) for osteoporosis against the rest,
    and that probability's expected calibration error (10 bins)."""
    from lumbarlab import metrics

    x = torch.from_numpy(np.asarray(normalize(split.images), np.float32))[:, None]
    prob = torch.cat([torch.softmax(model(x[i:i + 16]), 1) for i in range(0, len(x), 16)]).numpy()
    y, pred = split.category, prob.argmax(1)
    osteoporosis = (y == 0).astype(int)
    return {"accuracy": metrics.accuracy(y, pred), "kappa": metrics.cohen_kappa(y, pred, weights="quadratic"),
            "auc_osteoporosis": metrics.roc_auc(osteoporosis, prob[:, 0]),
            "ece_osteoporosis": metrics.expected_calibration_error(osteoporosis, prob[:, 0])}


@torch.inference_mode()
def evaluate_mri_recon(model: torch.nn.Module, slices: np.ndarray, accelerations: tuple[int, ...] = (4, 8),
                       coils: int = 8, seed: int = 0) -> dict[str, float]:
    """Accelerated MRI on whole slices (N, H, W): per acceleration R, the mean SSIM and PSNR against the fully
    sampled slice of the zero-filled image and of the model's output (both on the zero-filled image's scale,
    :class:`lumbarlab.datasets.mri_kspace.UndersampledSlices`; data range 1), and the SSIM gain. Keys:
    ``ssim_zero_filled_4x``, ``ssim_4x``, ``ssim_gain_4x``, ``psnr_zero_filled_4x``, ``psnr_4x``, and for 8×."""
    from lumbarlab import metrics
    from lumbarlab.datasets.mri_kspace import UndersampledSlices

    out: dict[str, float] = {}
    for r in accelerations:
        data = UndersampledSlices(slices, acceleration=r, coils=coils, seed=seed)
        scores: dict[str, list[float]] = {"ssim_zero_filled": [], "ssim": [], "psnr_zero_filled": [], "psnr": []}
        for i in range(len(data)):
            x, y = data[i]
            pred = model(x[None])[0, 0].numpy()
            x, y = x[0].numpy(), y[0].numpy()
            scores["ssim_zero_filled"].append(metrics.ssim(y, x, data_range=1.0))
            scores["ssim"].append(metrics.ssim(y, pred, data_range=1.0))
            scores["psnr_zero_filled"].append(metrics.psnr(y, x, data_range=1.0))
            scores["psnr"].append(metrics.psnr(y, pred, data_range=1.0))
        for key, values in scores.items():
            out[f"{key}_{r}x"] = float(np.mean(values))
        out[f"ssim_gain_{r}x"] = out[f"ssim_{r}x"] - out[f"ssim_zero_filled_{r}x"]
    return out


def evaluate_registration(model: torch.nn.Module, pairs) -> dict[str, float]:
    """A deformable registration network on posture pairs (:func:`lumbarlab.datasets.registration_pairs.posture_pair`):
    mean TRE of the 45 vertebral landmarks before and after (mm) and their ratio, the share of folded voxels
    (Jacobian ≤ 0, in % — the worst pair), and the mean Dice of the L1–L5 labels warped by the field (before and
    after). Timings are not metrics here: they are measured in ``benchmarks/`` and the lessons."""
    from lumbarlab.metrics import folded_fraction, target_registration_error
    from lumbarlab.register.deformable import displace_points, learned_register, warped_label_dice

    before, after, folded, dice_before, dice_after = [], [], [], [], []
    for pair in pairs:
        u, _ = learned_register(model, pair.moving, pair.fixed)
        before.append(target_registration_error(pair.fixed_points, pair.moving_points).mean())
        after.append(target_registration_error(displace_points(pair.fixed_points, u, pair.fixed), pair.moving_points).mean())
        folded.append(100.0 * folded_fraction(u, pair.fixed.spacing))
        dice_before.append(warped_label_dice(pair.moving_labels, np.zeros_like(u), pair.fixed_labels))
        dice_after.append(warped_label_dice(pair.moving_labels, u, pair.fixed_labels))
    return {"tre_before_mm": float(np.mean(before)), "tre_mm": float(np.mean(after)),
            "tre_reduction": float(np.mean(before) / max(np.mean(after), 1e-9)), "folded_percent": float(np.max(folded)),
            "dice_before": float(np.mean(dice_before)), "dice_after": float(np.mean(dice_after))}
