"""The embedded lumbar spine phantom: parametric anatomy in mm, CT/MRI/X-ray with exact truth.

Example:
    >>> from lumbarlab.phantom import make_case
    >>> case = make_case(seed := 3, slip={"L4": 30}, cobb=12)
    >>> case.ct.array.shape, case.lateral.image.shape
    ((160, 160, 200), (200, 160))
"""

from lumbarlab.measure.landmarks import centroids
from lumbarlab.phantom.case import MODALITIES, Case, make_case
from lumbarlab.phantom.labels import (
    CANAL_LABEL,
    DISC_LABEL,
    DISCS,
    LUMBAR,
    VERSE_LABEL,
    VERTEBRAE,
    Material,
    to_spider,
)
from lumbarlab.phantom.params import PhantomParams, sample_params

__all__ = [
    "Case", "make_case", "centroids", "MODALITIES", "PhantomParams", "sample_params",
    "VERTEBRAE", "LUMBAR", "DISCS", "VERSE_LABEL", "DISC_LABEL", "CANAL_LABEL", "Material", "to_spider",
]
