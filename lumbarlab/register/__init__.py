"""Registration: bring a moving image (or its landmarks) into line with a fixed one.

* :mod:`~lumbarlab.register.points` — closed-form rigid/affine fits of landmark pairs (Umeyama 1991).
* :mod:`~lumbarlab.register.volumes` — intensity-based rigid/affine registration of two volumes in torch, with
  normalised cross-correlation, SSD, mutual information or MIND (:mod:`~lumbarlab.register.similarity`).
* :mod:`~lumbarlab.register.deformable` — displacement fields in mm, the SimpleITK B-spline baseline and a learned
  LocalNet's field.
* :mod:`~lumbarlab.register.vertebrae` — one rigid transform per vertebra.
* :mod:`~lumbarlab.register.projection` — a differentiable radiograph of a CT and 2D/3D pose estimation.

Every transform maps **fixed** world points (mm) to **moving** world points: a landmark ``p`` of the fixed image sits
at ``T(p)`` in the moving one, and the moving image sampled at ``T(x)`` lines up with the fixed image at ``x``.
"""

from lumbarlab.register.points import PointTransform, affine_from_points, rigid_from_points
from lumbarlab.register.similarity import mind, mutual_information, ncc, ssd
from lumbarlab.register.volumes import SIMILARITIES, flatten_intensity, register_volumes

__all__ = ["PointTransform", "rigid_from_points", "affine_from_points", "register_volumes", "SIMILARITIES",
           "flatten_intensity", "ncc", "ssd", "mutual_information", "mind"]
