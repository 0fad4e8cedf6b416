"""lumbarlab: a teaching and exploration lab for deep learning on lumbar spine images.

The package is deliberately light at import time: heavy libraries (torch, MONAI,
matplotlib) are imported by the submodules that need them, so that widgets and the
command line start quickly.
"""

from lumbarlab.errors import LumbarLabError
from lumbarlab.imports import defer_iri_grammar

defer_iri_grammar()  # saves 1–5 s of every `import monai` (lumbarlab.imports says why)

__all__ = ["LumbarLabError", "__version__"]
__version__ = "0.1.0"
