"""torch Datasets per modality, from the phantom or from data converted by :mod:`lumbarlab.fetch`.

* :mod:`~lumbarlab.datasets.xray` — lateral radiographs for classification, segmentation and landmarks.
* :mod:`~lumbarlab.datasets.volumes` — 3D image + label volumes of any modality, and random patches of them.
* :mod:`~lumbarlab.datasets.ct` — phantom CT and its HU window; :mod:`~lumbarlab.datasets.mri` — thick sagittal
  stacks, MRI normalisation, and the series of converted MRI studies with their gradings.
* :mod:`~lumbarlab.datasets.preprocess` — preprocessing that returns its transform (square fit to a model).
* :mod:`~lumbarlab.datasets.sites` — imaging sites (acquisition + population) of the phantom, for domain shift.
"""

from lumbarlab.datasets.ct import (
    CT_SPINE_CLASSES,
    CT_WINDOW,
    DENSITY_CLASSES,
    DENSITY_WINDOW,
    BoneDensitySplit,
    ct_augment,
    ct_spine_pathology,
    dxa_t_score,
    normalize_ct,
    phantom_bone_density,
    phantom_ct,
    phantom_ct_spine,
)
from lumbarlab.datasets.mri import FetchedSeries, normalize_mri, phantom_sagittal_stacks
from lumbarlab.datasets.preprocess import SquareFit, fit_to_model
from lumbarlab.datasets.sites import (
    SITES,
    Site,
    lumbosacral_split,
    randomised,
    site_cases,
    site_params,
    site_radiographs,
    site_xrays,
)
from lumbarlab.datasets.volumes import (
    FetchedVolumes,
    PatchDataset,
    VolumeDataset,
    VolumePair,
    phantom_volumes,
)
from lumbarlab.datasets.xray import (
    LANDMARK_LEVELS,
    N_LANDMARKS,
    SEG_CLASSES,
    XRAY_TASKS,
    XrayDataset,
    XraySplit,
    corners_to_dict,
    fetched_xrays,
    landmarks_from_corners,
    mask_classes,
    phantom_xrays,
)

__all__ = [
    "XraySplit", "XrayDataset", "phantom_xrays", "fetched_xrays", "LANDMARK_LEVELS", "SEG_CLASSES", "XRAY_TASKS",
    "corners_to_dict", "landmarks_from_corners", "mask_classes", "N_LANDMARKS",
    "VolumePair", "VolumeDataset", "PatchDataset", "FetchedVolumes", "phantom_volumes",
    "phantom_ct", "normalize_ct", "CT_WINDOW", "DENSITY_WINDOW", "CT_SPINE_CLASSES", "ct_augment", "ct_spine_pathology",
    "phantom_ct_spine", "BoneDensitySplit", "phantom_bone_density", "dxa_t_score", "DENSITY_CLASSES",
    "phantom_sagittal_stacks", "normalize_mri", "FetchedSeries",
    "SquareFit", "fit_to_model",
    "Site", "SITES", "site_params", "site_radiographs", "site_xrays", "site_cases", "randomised", "lumbosacral_split",
]
