"""Zoo recipes: what each model is — modality, task, spatial dimensions, network — what it trains on
(a dataset builder of :mod:`lumbarlab.zoo.data` and phantom seeds), and the floor it must reach.

Phantom seeds of the splits lie far apart (train from 100 000, validation from 800 000, test from
900 000), so no anatomy is shared between them. The X-ray floors are issue #4's: AUC ≥ 0.95,
mean Dice ≥ 0.90, mean radial error ≤ 2 mm.

A new model is a new :class:`Recipe` in :data:`RECIPES`; a 3D CT segmenter, for example::

    Recipe("ct-vertebrae", "segmentation", "unet", "tiny", 7, ("mean_dice", ">=", 0.85), "…",
           modality="ct", spatial_dims=3, dataset="phantom_volumes", classes=(20, 21, 22, 23, 24, 26),
           image_size=(96, 96, 120), spacing=1.5, patch=(64, 64, 64), train=(100_000, 40), val=(800_000, 4),
           test=(900_000, 8))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lumbarlab.errors import LumbarLabError

__all__ = ["Recipe", "RECIPES", "resolve"]


@dataclass(frozen=True)
class Recipe:
    """One reproducible training run on phantom data.

    Attributes:
        name: zoo name (also the checkpoint's file stem).
        task: ``classification``, ``segmentation``, ``landmarks``, ``centroids`` (3D heatmaps),
            ``reconstruction`` or ``grading`` (several classification heads; :data:`lumbarlab.zoo.tasks.TASKS`).
        arch, size, out_channels: passed to :func:`lumbarlab.models.build_model`.
        modality: ``xray``, ``ct``, ``t1`` or ``t2``; spatial_dims: 2 or 3.
        dataset: the builder of its splits in :data:`lumbarlab.zoo.data.BUILDERS`.
        image_size: square image side in pixels (X-ray: a 230 mm field of view, 0.898 mm per pixel at 256), or a
            volume's shape in voxels (3D).
        spacing: voxel size in mm of the phantom volumes, one for every axis or (x, y, z).
        patch: 3D training patch and sliding-window size in voxels, or the 2D training crop of a slice-wise
            denoiser (None: whole images).
        classes: for segmentation, the label values that become classes 1, 2, … (0 is background); empty when the
            dataset already gives class indices.
        per_volume: 3D training patches drawn from each training volume per epoch (crops per slice for the
            slice-wise denoiser).
        flips: test-time augmentation of the test split and of ``lumbarlab segment``: spatial axes along which the
            input is also mirrored and the outputs averaged (:class:`lumbarlab.infer.Predictor`).
        train, val, test: (first anatomy seed, number of images) of each split.
        epochs, batch_size, lr: AdamW with cosine decay (:func:`lumbarlab.train.fit`).
        augment: random contrast, gamma, noise and shifts (:class:`lumbarlab.datasets.XrayDataset`).
        init_from: zoo model whose UNet encoder initialises this one (transfer learning), or None.
        floor: (metric, ``">="`` or ``"<="``, value) the test split must meet.
        seed: torch seed of weights init, shuffling and augmentation.
        heatmap_weight: landmarks only — weight of the DSNT loss's heatmap term (:mod:`lumbarlab.losses`).
        in_channels: input channels; a slice-wise model of thick slabs sees each slab with its neighbours (3).
    """

    name: str
    task: str
    arch: str
    size: str
    out_channels: int
    floor: tuple[str, str, float]
    description: str
    image_size: int | tuple[int, ...] = 256
    train: tuple[int, int] = (100_000, 800)
    val: tuple[int, int] = (800_000, 100)
    test: tuple[int, int] = (900_000, 200)
    epochs: int = 8
    batch_size: int = 16
    lr: float = 2e-3
    augment: bool = True
    init_from: str | None = None
    seed: int = 0
    heatmap_weight: float = 1.0
    modality: str = "xray"
    spatial_dims: int = 2
    dataset: str = "phantom_xrays"
    spacing: float | tuple[float, ...] = 1.0
    patch: tuple[int, ...] | None = None
    classes: tuple[int, ...] = ()
    per_volume: int = 4
    flips: tuple[int, ...] = ()
    in_channels: int = 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("xray-vertebrae", "segmentation", "unet", "tiny", 3, ("mean_dice", ">=", 0.90),
               "MONAI UNet (8–128 channels, 2 residual units): background, vertebral bodies T12–L5, sacrum.",
               epochs=8),
        Recipe("xray-corners", "landmarks", "unet", "tiny", 22, ("mre_mm", "<=", 2.0),
               "MONAI UNet + 1×1 head: 22 heatmaps (4 body corners of L1–L5, S1's superior endplate), DSNT loss "
               "with a heavy heatmap term (16) so that maps are single peaks; starts from the segmenter's weights.",
               epochs=14, lr=2e-3, init_from="xray-vertebrae", heatmap_weight=16.0),
        Recipe("xray-slip", "classification", "unet_encoder", "tiny", 2, ("auc", ">=", 0.95),
               "The segmenter's UNet encoder + pooling + linear: spondylolisthesis (any slip ≥ 8 %) vs none.",
               train=(200_000, 2000), val=(800_000, 200), epochs=8, batch_size=32, lr=1e-3,
               init_from="xray-vertebrae"),
        Recipe("ct-vertebrae", "segmentation", "unet", "tiny", 8, ("mean_dice", ">=", 0.90),
               "3D MONAI UNet (8–128 channels) at 2 mm on 64 × 64 × 96 patches (128 × 128 × 192 mm: four to five "
               "vertebrae, so the sacrum or the last ribs are usually in view to count from): background, T12, "
               "L1–L5, sacrum (VerSe 19–24, 26), then the label clean-up of lumbarlab.postprocess. Trained on "
               "body-wide phantom CTs with varied pathology, dose and contrast, and augmented (mirror, rotation, "
               "scale, HU gain/offset, gamma, noise, blur, coarse voxels) so that it learns the spine's shape, not "
               "the phantom's look. Inference averages the scan and its left-right mirror.",
               modality="ct", spatial_dims=3, dataset="phantom_ct_spine", classes=(19, 20, 21, 22, 23, 24, 26),
               image_size=(156, 120, 132), spacing=2.0, patch=(64, 64, 96), train=(100_000, 48),
               val=(800_000, 4), test=(900_000, 8), per_volume=4, epochs=28, batch_size=2, lr=2e-3, flips=(0,)),
        Recipe("ct-centroids", "centroids", "unet", "tiny", 7, ("id_rate", ">=", 0.95),
               "3D MONAI UNet (8–128 channels) + 1×1 head at 4 mm: seven heatmaps, the centres of T12, L1–L5 and the "
               "sacrum (VerSe 19–24, 26), trained with CenterNet's focal loss on 32 × 32 × 48 patches (128 × 128 × "
               "192 mm) of the CT spine cases, mirrored, with HU gain, gamma, noise and the end of the scan, so a "
               "vertebra the field of view cuts off has no peak. A vertebra is where its heatmap peaks above 0.3.",
               modality="ct", spatial_dims=3, dataset="phantom_ct_centroids", classes=(19, 20, 21, 22, 23, 24, 26),
               image_size=(78, 60, 66), spacing=4.0, patch=(32, 32, 48), train=(100_000, 48), val=(800_000, 4),
               test=(900_000, 8), per_volume=8, epochs=20, batch_size=4, lr=2e-3),
        Recipe("ct-density", "classification", "resnet", "tiny", 3, ("auc_osteoporosis", ">=", 0.90),
               "3D ResNet (tiny) on a 48 mm cube round L1's trabecular core (24³ voxels of 2 mm, HU window −200…600): "
               "osteoporosis (≤ 110 HU), osteopenia (≤ 160 HU) or normal, against the phantom's true density "
               "(Pickhardt et al. 2013's cut-offs), on clinical phantom CTs with their own contrast phase and kVp. "
               "What the CT dashboard explains with Grad-CAM.",
               modality="ct", spatial_dims=3, dataset="phantom_bone_density", image_size=24, spacing=2.0,
               train=(100_000, 400), val=(800_000, 50), test=(900_000, 100), epochs=30, batch_size=16, lr=2e-3,
               augment=False),
        Recipe("mri-recon", "reconstruction", "unet", "tiny", 1, ("ssim_gain_4x", ">=", 0.05),
               "2D MONAI U-Net (8–128 channels) that adds a correction to its input, the fastMRI baseline's idea: "
               "zero-filled → fully sampled sagittal T2 "
               "slices of the phantom seen through 8 coils, Cartesian undersampling at 4× (8 % calibration band) and "
               "8× (4 %), a new random mask for every slice; mean squared error on the zero-filled image's scale.",
               modality="t2", spatial_dims=2, dataset="phantom_mri_slices", image_size=(64, 96, 112), spacing=2.0,
               train=(100_000, 80), val=(800_000, 4), test=(900_000, 8), epochs=30, batch_size=8, lr=2e-3),
        Recipe("mri-spine", "segmentation", "unet", "tiny", 15, ("mean_dice", ">=", 0.90),
               "2D MONAI UNet (8–128 channels) slice by slice on sagittal T2 stacks of 4 mm slabs at 1.25 mm in-plane, "
               "each slab with its two neighbours as channels: background, T12, L1–L5, sacrum (VerSe 19–24, 26), the "
               "discs T12/L1 … L5/S1 (119–124) and the canal (200), then the vertebra clean-up of "
               "lumbarlab.postprocess on the stack. Trained on phantom spines with every Pfirrmann grade, herniations, "
               "stenosis, slips and random tissue contrasts, augmented (rotation, scale, bias field, gamma, noise, "
               "blur, 160 × 176 crops) for scanners other than the phantom's. Scored on test stacks with the "
               "phantom's T2 contrast (random contrasts are for training only).",
               modality="t2", spatial_dims=2, dataset="phantom_mri_spine",
               classes=(19, 20, 21, 22, 23, 24, 26, 119, 120, 121, 122, 123, 124, 200), image_size=(96, 176, 192),
               spacing=1.25, patch=(160, 176), train=(100_000, 60), val=(800_000, 4), test=(900_000, 8), epochs=24,
               batch_size=8, lr=2e-3, in_channels=3),
        Recipe("mri-discs", "grading", "resnet", "small", 10, ("pfirrmann_kappa", ">=", 0.85),
               "2D MONAI ResNet (16–128 channels) on an 80 mm crop round each disc of a sagittal T2 stack and the canal "
               "behind it, turned so that the disc lies flat, from its mid-sagittal slab and the two beside it: three heads — Pfirrmann I–V "
               "(Pfirrmann et al. 2001), a posterior herniation (≥ 2 mm), and central canal stenosis in RSNA 2024's "
               "grades (normal/mild, moderate, severe: the canal's AP diameter at the disc ≥ 13, 10–13, < 10 mm, "
               "Verbiest) — trained with the sum of their cross-entropies (stenosis weighted 1/2/4 as RSNA scores). "
               "Crops are jittered (±3 mm, ±8°, ±8 % scale, gain, gamma, noise) as a predicted mask would place them.",
               modality="t2", spatial_dims=2, dataset="phantom_mri_discs", image_size=(96, 176, 192), spacing=1.25,
               train=(100_000, 300), val=(800_000, 20), test=(900_000, 40), epochs=30, batch_size=32, lr=2e-3,
               in_channels=3),
        Recipe("ct-register", "registration", "localnet", "tiny", 3, ("tre_reduction", ">=", 2.0),
               "3D MONAI LocalNet (8 initial channels, 4 levels) predicting a dense displacement from a moving and a fixed "
               "CT of one phantom patient in two postures (±10° of lordosis), both windowed to −200…1500 HU on one 4 mm "
               "grid; loss: 1 − local NCC + Dice of the warped T12–sacrum labels + 0.5 × bending energy (Hu et al. 2018). "
               "Scored by the mean TRE of 45 vertebral landmarks, the folded voxels and the labels' Dice.",
               modality="ct", spatial_dims=3, dataset="phantom_posture_pairs", image_size=(40, 32, 64), spacing=4.0,
               train=(100_000, 80), val=(800_000, 4), test=(900_000, 8), epochs=16, batch_size=2, lr=2e-3,
               augment=False),
        Recipe("ct-denoise", "reconstruction", "dncnn", "small", 1, ("psnr_gain_quarter", ">=", 5.0),
               "2D DnCNN (Zhang et al. 2017: 8 layers of 32 channels, predicts the noise and subtracts it) on axial "
               "slices of body-wide phantom CTs at 1.25 mm in-plane, trained on 64 × 64 crops at quarter, half and "
               "full dose (each patient's own dose) against the noise-free image, with mean squared error. "
               "Scored on whole slices of eight test patients at each dose.",
               modality="ct", spatial_dims=2, dataset="phantom_ct_dose", image_size=(240, 192, 24),
               spacing=(1.25, 1.25, 6.0), patch=(64, 64), train=(100_000, 64), val=(800_000, 4),
               test=(900_000, 8), per_volume=2, epochs=20, batch_size=16, lr=2e-3),
    )
}

def aliases() -> dict[str, str]:
    """Other names of each model: ``modality/task`` (``xray/segmentation``), and the bare task while only one
    model has it — a second modality's segmenter makes a bare ``segmentation`` ambiguous, never silently X-ray."""
    out: dict[str, str] = {}
    by_task: dict[str, list[str]] = {}
    for r in RECIPES.values():
        out.setdefault(f"{r.modality}/{r.task}", r.name)
        by_task.setdefault(r.task, []).append(r.name)
    for task, names in by_task.items():
        if len(names) == 1:
            out[task] = names[0]
    return out


def resolve(name: str) -> Recipe:
    """A recipe by zoo name, by ``modality/task`` (``xray/segmentation`` → ``xray-vertebrae``), or by task alone
    while only one model has that task.

    Example:
        >>> resolve("xray/landmarks").name, resolve("ct/classification").name, resolve("landmarks").name
        ('xray-corners', 'ct-density', 'xray-corners')
    """
    if name in RECIPES:
        return RECIPES[name]
    found = aliases().get(name)
    if found is None:
        tasks = {r.task for r in RECIPES.values()}
        hint = (f"several models do {name}: name one of {', '.join(r.name for r in RECIPES.values() if r.task == name)}"
                if name in tasks else f"choose from {', '.join(RECIPES)} (or {', '.join(sorted(aliases()))})")
        raise LumbarLabError(f"no zoo model {name!r}; {hint}.")
    return RECIPES[found]
