"""Where a zoo recipe's data comes from: one builder per dataset kind, each giving the training set, the
validation set and the held-out test split of a recipe, and scoring a model on that test split.

| builder | modality | training items | test split |
| --- | --- | --- | --- |
| ``phantom_xrays`` | lateral radiographs | :class:`~lumbarlab.datasets.XrayDataset` (augmented) | an :class:`~lumbarlab.datasets.XraySplit` |
| ``phantom_volumes`` | CT, T1 or T2 (the recipe's ``modality``) | random 3D patches | whole volumes, sliding windows |
| ``phantom_ct_spine`` | CT with varied pathology, dose and contrast, body-wide field | fresh, augmented 3D patches | whole volumes, sliding windows + label clean-up |
| ``phantom_ct_centroids`` | the CT spine cases, 2 mm coarsened to the recipe's grid, with their vertebra centroids | fresh heatmap patches, augmented | whole volumes, sliding windows, heatmap peaks |
| ``phantom_bone_density`` | CT crops round L1 with the phantom's true density class | all crops, as they are | the held-out crops: accuracy, κ, AUC, calibration |
| ``phantom_mri_slices`` | sagittal T2 slices through 8 coils, Cartesian undersampling (4× and 8×) | zero-filled → fully sampled pairs, a new mask per item | the same at 4× and 8×: SSIM/PSNR of zero-filled and model |
| ``phantom_mri_spine`` | sagittal T2 stacks of varied spines (4 mm slabs) | slabs with their neighbours, augmented crops | whole stacks slab by slab + clean-up: Dice per structure |
| ``phantom_mri_discs`` | per-disc crops of those stacks in the disc's frame, with Pfirrmann, herniation, stenosis | crops jittered in centre, angle, scale and contrast | crops from the true frames: κ, AUC, RSNA log loss |
| ``phantom_ct_dose`` | low-dose CT with its noise-free image | crops of axial slices (¼, ½ or 1 dose) | the same patients at ¼, ½ and full dose, whole slices |

Adding a dataset kind is adding a :class:`Builder` to :data:`BUILDERS`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.zoo.recipes import Recipe
from lumbarlab.zoo.tasks import (
    TEST_DOSES,
    evaluate_centroids,
    evaluate_classification,
    evaluate_denoising,
    evaluate_density,
    evaluate_grading,
    evaluate_landmarks,
    evaluate_mri_recon,
    evaluate_mri_spine,
    evaluate_registration,
    evaluate_segmentation,
    evaluate_vertebra_volumes,
    evaluate_volumes,
)

__all__ = ["Builder", "BUILDERS", "builder", "test_split"]


@dataclass(frozen=True)
class Builder:
    """The data of one dataset kind: ``train(recipe)`` and ``val(recipe)`` give torch Datasets, ``test(recipe)``
    the held-out split, ``evaluate(recipe, model, test)`` its metrics."""

    train: Callable[[Recipe], torch.utils.data.Dataset]
    val: Callable[[Recipe], torch.utils.data.Dataset]
    test: Callable[[Recipe], object]
    evaluate: Callable[[Recipe, torch.nn.Module, object], dict]


# -- lateral radiographs -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _xray_split(first_seed: int, count: int, size: int):
    from lumbarlab.datasets import phantom_xrays

    return phantom_xrays(count, seed=first_seed, size=size)


def _xray_train(recipe: Recipe):
    from lumbarlab.datasets import XrayDataset

    return XrayDataset(_xray_split(*recipe.train, recipe.image_size), recipe.task, augment=recipe.augment)


def _xray_val(recipe: Recipe):
    from lumbarlab.datasets import XrayDataset

    return XrayDataset(_xray_split(*recipe.val, recipe.image_size), recipe.task)


def _xray_evaluate(recipe: Recipe, model: torch.nn.Module, split) -> dict:
    scorer = {"classification": evaluate_classification, "segmentation": evaluate_segmentation,
              "landmarks": evaluate_landmarks}.get(recipe.task)
    if scorer is None:
        raise LumbarLabError(f"{recipe.name}: phantom_xrays has no test for task {recipe.task!r}.")
    return scorer(model, split)


# -- 3D volumes of any modality ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _volumes(modality: str, first_seed: int, count: int, shape: tuple[int, ...], spacing: float):
    from lumbarlab.datasets import phantom_volumes

    return tuple(phantom_volumes(count, first_seed, modality, shape, spacing))


def _volume_set(recipe: Recipe, split: tuple[int, int]):
    from lumbarlab.datasets import VolumeDataset, normalize_ct, normalize_mri

    normalize = normalize_ct if recipe.modality == "ct" else normalize_mri
    pairs = _volumes(recipe.modality, *split, tuple(recipe.image_size), recipe.spacing)
    return VolumeDataset(list(pairs), normalize=normalize, classes=recipe.classes or None)


def _volumes_train(recipe: Recipe):
    from lumbarlab.datasets import PatchDataset

    return PatchDataset(_volume_set(recipe, recipe.train), patch=recipe.patch, per_volume=4, seed=recipe.seed)


def _volumes_val(recipe: Recipe):
    from lumbarlab.datasets import PatchDataset

    return PatchDataset(_volume_set(recipe, recipe.val), patch=recipe.patch, per_volume=2, seed=10_000 + recipe.seed)


def _volumes_evaluate(recipe: Recipe, model: torch.nn.Module, volumes) -> dict:
    if recipe.task != "segmentation":
        raise LumbarLabError(f"{recipe.name}: phantom_volumes has no test for task {recipe.task!r}.")
    return evaluate_volumes(model, volumes, recipe.patch)


# -- CT spine: varied pathology, augmented patches ------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _ct_spine(first_seed: int, count: int, shape: tuple[int, ...], spacing: float):
    from lumbarlab.datasets import phantom_ct_spine

    return tuple(phantom_ct_spine(count, first_seed, shape, spacing))


def _ct_spine_set(recipe: Recipe, split: tuple[int, int]):
    from lumbarlab.datasets import VolumeDataset, normalize_ct

    pairs = _ct_spine(*split, tuple(recipe.image_size), recipe.spacing)
    return VolumeDataset(list(pairs), normalize=normalize_ct, classes=recipe.classes or None)


def _ct_spine_train(recipe: Recipe):
    from lumbarlab.datasets import PatchDataset, ct_augment

    return PatchDataset(_ct_spine_set(recipe, recipe.train), patch=recipe.patch, per_volume=recipe.per_volume,
                        seed=recipe.seed, fresh=True, augment=ct_augment(recipe.seed) if recipe.augment else None)


def _ct_spine_val(recipe: Recipe):
    from lumbarlab.datasets import PatchDataset

    return PatchDataset(_ct_spine_set(recipe, recipe.val), patch=recipe.patch, per_volume=2, seed=10_000 + recipe.seed)


def _ct_spine_evaluate(recipe: Recipe, model: torch.nn.Module, volumes) -> dict:
    if recipe.task != "segmentation":
        raise LumbarLabError(f"{recipe.name}: phantom_ct_spine has no test for task {recipe.task!r}.")
    return evaluate_vertebra_volumes(model, volumes, recipe.patch, recipe.flips)


# -- CT spine: vertebra centroids ----------------------------------------------------------------------
def _ct_centroid_cases(recipe: Recipe, split: tuple[int, int]) -> list:
    """The CT spine cases at 2 mm (shared with ``ct-vertebrae``), coarsened to the recipe's grid
    (``image_size`` voxels of ``spacing`` mm), with the centroids of their true 2 mm label maps."""
    from lumbarlab.datasets.centroids import CentroidCase, coarsen, vertebra_centroids
    from lumbarlab.volume import to_canonical

    factor = int(round(float(recipe.spacing) / 2.0))
    shape = tuple(int(n) * factor for n in recipe.image_size)
    out = []
    for pair in _ct_spine(*split, shape, 2.0):
        image, labels = to_canonical(pair.image), to_canonical(pair.labels)
        out.append(CentroidCase(coarsen(image, factor), vertebra_centroids(labels, recipe.classes), pair.case_id))
    return out


def _ct_centroids_train(recipe: Recipe):
    from lumbarlab.datasets import normalize_ct
    from lumbarlab.datasets.centroids import HeatmapPatchDataset

    return HeatmapPatchDataset(_ct_centroid_cases(recipe, recipe.train), recipe.classes, recipe.patch, normalize_ct,
                               per_volume=recipe.per_volume, seed=recipe.seed, augment=recipe.augment)


def _ct_centroids_val(recipe: Recipe):
    from lumbarlab.datasets import normalize_ct
    from lumbarlab.datasets.centroids import HeatmapPatchDataset

    return HeatmapPatchDataset(_ct_centroid_cases(recipe, recipe.val), recipe.classes, recipe.patch, normalize_ct,
                               per_volume=2, seed=10_000 + recipe.seed)


def _ct_centroids_evaluate(recipe: Recipe, model: torch.nn.Module, cases) -> dict:
    from lumbarlab.datasets import normalize_ct

    if recipe.task != "centroids":
        raise LumbarLabError(f"{recipe.name}: phantom_ct_centroids has no test for task {recipe.task!r}.")
    return evaluate_centroids(model, cases, recipe.classes, recipe.patch, normalize_ct)


# -- CT bone density: crops round L1 ---------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _density(first_seed: int, count: int, crop: int, spacing: float):
    from lumbarlab.datasets import phantom_bone_density

    return phantom_bone_density(count, first_seed, crop=crop, spacing=spacing)


def _density_normalize(images):
    from lumbarlab.datasets.ct import DENSITY_WINDOW, normalize_ct

    return normalize_ct(images, window=DENSITY_WINDOW)


def _density_set(recipe: Recipe, split: tuple[int, int]):
    data = _density(*split, int(recipe.image_size), float(recipe.spacing))
    x = torch.from_numpy(_density_normalize(data.images))[:, None]
    return torch.utils.data.TensorDataset(x, torch.from_numpy(data.category).long())


def _density_evaluate(recipe: Recipe, model: torch.nn.Module, split) -> dict:
    if recipe.task != "classification":
        raise LumbarLabError(f"{recipe.name}: phantom_bone_density has no test for task {recipe.task!r}.")
    return evaluate_density(model, split, _density_normalize)


# -- accelerated MRI: sagittal T2 slices -------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _mri_slices(first_seed: int, count: int, shape: tuple[int, ...], spacing: float):
    """The central sagittal planes (the middle third across the body, every second) of ``count`` phantom T2
    volumes: (N, Y, Z) in the scanner's arbitrary units."""
    import numpy as np

    from lumbarlab.phantom import make_case

    out = []
    for k in range(count):
        t2 = np.asarray(make_case(first_seed + k, shape=shape, spacing=spacing, modalities=("t2",)).t2.array, np.float32)
        x = t2.shape[0]
        out.append(t2[x // 3: 2 * x // 3: 2])
    return np.concatenate(out)


def _mri_recon_set(recipe: Recipe, split: tuple[int, int], seed: int):
    from lumbarlab.datasets.mri_kspace import UndersampledSlices

    return UndersampledSlices(_mri_slices(*split, tuple(recipe.image_size), float(recipe.spacing)), acceleration=(4, 8),
                              seed=seed)


def _mri_recon_evaluate(recipe: Recipe, model: torch.nn.Module, slices) -> dict:
    if recipe.task != "reconstruction":
        raise LumbarLabError(f"{recipe.name}: phantom_mri_slices has no test for task {recipe.task!r}.")
    return evaluate_mri_recon(model, slices, seed=20_000 + recipe.seed)


# -- MRI spine: sagittal T2 stacks of varied spines ------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _mri_spine(first_seed: int, count: int, shape: tuple[int, ...], spacing: float, randomise: bool = True):
    """Training and validation stacks include random tissue contrasts; the test split has the phantom's T2
    contrast only (random contrasts train robustness; a scanner never makes them)."""
    from lumbarlab.datasets.mri_spine import phantom_mri_spine

    return tuple(phantom_mri_spine(count, first_seed, shape, spacing, randomise=randomise))


def _mri_spine_set(recipe: Recipe, split: tuple[int, int], augment: bool):
    from lumbarlab.datasets.mri_spine import SagittalSlabDataset, mri_augment

    pairs = list(_mri_spine(*split, tuple(recipe.image_size), float(recipe.spacing)))
    aug = mri_augment(recipe.seed, tuple(recipe.patch)) if augment else None
    return SagittalSlabDataset(pairs, tuple(recipe.classes), context=(recipe.in_channels - 1) // 2, augment=aug)


def _mri_spine_evaluate(recipe: Recipe, model: torch.nn.Module, pairs) -> dict:
    if recipe.task != "segmentation":
        raise LumbarLabError(f"{recipe.name}: phantom_mri_spine has no test for task {recipe.task!r}.")
    return evaluate_mri_spine(model, pairs, tuple(recipe.classes), tuple(recipe.patch), recipe.in_channels)


# -- MRI disc grading: per-disc crops -------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _disc_stacks(first_seed: int, count: int, shape: tuple[int, ...], spacing: float):
    from lumbarlab.datasets.mri_discs import phantom_disc_stacks

    return tuple(phantom_disc_stacks(count, first_seed, shape, spacing))


def _disc_set(recipe: Recipe, split: tuple[int, int], jitter: bool, seed: int):
    from lumbarlab.datasets.mri_discs import DiscCropDataset

    return DiscCropDataset(list(_disc_stacks(*split, tuple(recipe.image_size), float(recipe.spacing))), jitter, seed)


def _disc_evaluate(recipe: Recipe, model: torch.nn.Module, stacks) -> dict:
    if recipe.task != "grading":
        raise LumbarLabError(f"{recipe.name}: phantom_mri_discs has no test for task {recipe.task!r}.")
    return evaluate_grading(model, stacks)


# -- low-dose CT with its noise-free image -----------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _ct_dose(first_seed: int, count: int, dose: float | None, shape: tuple[int, ...], spacing: tuple[float, ...]):
    from lumbarlab.datasets.ct_dose import phantom_ct_dose

    return tuple(phantom_ct_dose(count, first_seed, dose, shape, spacing))


def _ct_dose_set(recipe: Recipe, split: tuple[int, int], seed: int, augment: bool):
    from lumbarlab.datasets.ct_dose import DoseSliceDataset

    pairs = _ct_dose(*split, None, tuple(recipe.image_size), tuple(np.broadcast_to(recipe.spacing, 3).tolist()))
    return DoseSliceDataset(list(pairs), patch=recipe.patch, per_slice=recipe.per_volume, seed=seed, augment=augment)


def _ct_dose_test(recipe: Recipe) -> dict:
    spacing = tuple(np.broadcast_to(recipe.spacing, 3).tolist())
    return {dose: list(_ct_dose(*recipe.test, dose, tuple(recipe.image_size), spacing)) for dose in TEST_DOSES}


def _ct_dose_evaluate(recipe: Recipe, model: torch.nn.Module, pairs_by_dose) -> dict:
    if recipe.task != "reconstruction":
        raise LumbarLabError(f"{recipe.name}: phantom_ct_dose has no test for task {recipe.task!r}.")
    return evaluate_denoising(model, pairs_by_dose)


# -- CT posture pairs for deformable registration -------------------------------------------------------------
def _posture_pairs(first_seed: int, count: int, shape: tuple[int, ...], spacing: float) -> list:
    from lumbarlab.datasets.registration_pairs import posture_pair, random_flexion

    return [posture_pair(s, random_flexion(s), shape=shape, spacing=spacing) for s in range(first_seed, first_seed + count)]


def _posture_set(recipe: Recipe, split: tuple[int, int]):
    from lumbarlab.datasets.registration_pairs import PosturePairs

    return PosturePairs(*split, shape=tuple(recipe.image_size), spacing=float(recipe.spacing))


BUILDERS: dict[str, Builder] = {
    "phantom_xrays": Builder(_xray_train, _xray_val, lambda r: _xray_split(*r.test, r.image_size), _xray_evaluate),
    "phantom_volumes": Builder(_volumes_train, _volumes_val, lambda r: _volume_set(r, r.test), _volumes_evaluate),
    "phantom_ct_spine": Builder(_ct_spine_train, _ct_spine_val, lambda r: _ct_spine_set(r, r.test), _ct_spine_evaluate),
    "phantom_ct_centroids": Builder(_ct_centroids_train, _ct_centroids_val, lambda r: _ct_centroid_cases(r, r.test),
                                    _ct_centroids_evaluate),
    "phantom_bone_density": Builder(lambda r: _density_set(r, r.train), lambda r: _density_set(r, r.val),
                                    lambda r: _density(*r.test, int(r.image_size), float(r.spacing)), _density_evaluate),
    "phantom_mri_slices": Builder(lambda r: _mri_recon_set(r, r.train, r.seed),
                                  lambda r: _mri_recon_set(r, r.val, 10_000 + r.seed),
                                  lambda r: _mri_slices(*r.test, tuple(r.image_size), float(r.spacing)), _mri_recon_evaluate),
    "phantom_mri_spine": Builder(lambda r: _mri_spine_set(r, r.train, r.augment),
                                 lambda r: _mri_spine_set(r, r.val, False),
                                 lambda r: list(_mri_spine(*r.test, tuple(r.image_size), float(r.spacing), False)),
                                 _mri_spine_evaluate),
    "phantom_mri_discs": Builder(lambda r: _disc_set(r, r.train, r.augment, r.seed),
                                 lambda r: _disc_set(r, r.val, False, r.seed),
                                 lambda r: _disc_stacks(*r.test, tuple(r.image_size), float(r.spacing)), _disc_evaluate),
    "phantom_posture_pairs": Builder(lambda r: _posture_set(r, r.train), lambda r: _posture_set(r, r.val),
                                     lambda r: _posture_pairs(*r.test, tuple(r.image_size), float(r.spacing)),
                                     lambda r, model, pairs: evaluate_registration(model, pairs)),
    "phantom_ct_dose": Builder(lambda r: _ct_dose_set(r, r.train, r.seed, r.augment),
                               lambda r: _ct_dose_set(r, r.val, 10_000 + r.seed, False), _ct_dose_test, _ct_dose_evaluate),
}


def builder(recipe: Recipe) -> Builder:
    """The data builder a recipe names."""
    if recipe.dataset not in BUILDERS:
        raise LumbarLabError(f"{recipe.name}: no dataset builder {recipe.dataset!r}; choose from {', '.join(BUILDERS)}.")
    if recipe.spatial_dims == 3 and not recipe.patch and recipe.task in ("segmentation", "centroids"):
        raise LumbarLabError(f"{recipe.name}: a 3D recipe needs a patch size (training patches, sliding windows).")
    return BUILDERS[recipe.dataset]


def test_split(recipe: Recipe):
    """The recipe's held-out test split (generated once per process)."""
    return builder(recipe).test(recipe)
