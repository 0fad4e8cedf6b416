"""Clinical measurements from landmarks and masks, in mm and degrees, each citing its definition.

* :mod:`~lumbarlab.measure.core` — the formulas: Meyerding slip and grade, endplate and lordosis
  angles, Cobb angle, vertebral and disc heights, height loss and Genant grade, bone-density categories.
* :mod:`~lumbarlab.measure.reports` — every number of a lateral or AP radiograph at once.
* :mod:`~lumbarlab.measure.landmarks` — corners from a (predicted) mask, masks from corners, corner
  CSVs, centroids of 3D label maps.
* :mod:`~lumbarlab.measure.vertebra3d` — one vertebra of a 3D label map in its own frame: body,
  endplates, the six morphometric points, heights (any orientation, spacing, whole-vertebra masks).
* :mod:`~lumbarlab.measure.label_map` — a whole label map measured per level (heights, Genant grade,
  canal, truncation) in VerSe or TotalSegmentator v2 values; :mod:`~lumbarlab.measure.ct` — trabecular HU.
"""

from lumbarlab.measure.core import (
    bone_density_category,
    cobb_angle,
    disc_heights,
    endplate_angle,
    genant_grade,
    height_loss,
    lordosis_angle,
    lumbosacral_angle,
    meyerding_grade,
    meyerding_slip,
    sacral_slope,
    segmental_angle,
    vertebral_heights,
)
from lumbarlab.measure.ct import trabecular_core, trabecular_hu
from lumbarlab.measure.label_map import (
    LabelMapReport,
    canal_ap_diameter,
    heights_from_label_map,
    measure_label_map,
    mid_sagittal_slice,
)
from lumbarlab.measure.landmarks import (
    centroids,
    corners_from_label_image,
    corners_from_lateral_mask,
    corners_from_mask,
    corners_to_mask,
    read_corners_csv,
    write_corners_csv,
)
from lumbarlab.measure.reports import APReport, LateralReport, measure_ap, measure_lateral
from lumbarlab.measure.vertebra3d import VertebraGeometry, vertebra_geometry

__all__ = [
    "meyerding_slip", "meyerding_grade", "endplate_angle", "lordosis_angle", "cobb_angle", "vertebral_heights",
    "genant_grade", "bone_density_category", "segmental_angle", "sacral_slope", "lumbosacral_angle",
    "disc_heights", "height_loss", "measure_lateral", "measure_ap", "LateralReport", "APReport",
    "corners_from_mask", "corners_from_lateral_mask", "corners_to_mask", "corners_from_label_image", "centroids", "read_corners_csv",
    "write_corners_csv", "trabecular_hu", "trabecular_core", "heights_from_label_map", "canal_ap_diameter", "measure_label_map",
    "LabelMapReport", "mid_sagittal_slice", "vertebra_geometry", "VertebraGeometry",
]
