"""lumbarlab: a teaching and exploration lab for deep learning on lumbar spine images.

The package is deliberately light at import time: heavy libraries (torch, MONAI,
matplotlib) are imported by the submodules that need them, so that widgets and the
command line start quickly.
"""

from lumbarlab.errors import LumbarLabError

__all__ = ["LumbarLabError", "__version__"]
__version__ = "0.1.0"
