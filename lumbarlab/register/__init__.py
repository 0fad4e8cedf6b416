"""Registration: bring a moving image (or its landmarks) into line with a fixed one.

* :mod:`~lumbarlab.register.points` — closed-form rigid/affine fits of landmark pairs (Umeyama 1991).
* :mod:`~lumbarlab.register.volumes` — intensity-based rigid/affine registration of two volumes in torch.

Every transform maps **fixed** world points (mm) to **moving** world points: a landmark ``p`` of the fixed image sits
at ``T(p)`` in the moving one, and the moving image sampled at ``T(x)`` lines up with the fixed image at ``x``.
"""

from lumbarlab.register.points import PointTransform, affine_from_points, rigid_from_points
from lumbarlab.register.volumes import register_volumes

__all__ = ["PointTransform", "rigid_from_points", "affine_from_points", "register_volumes"]
