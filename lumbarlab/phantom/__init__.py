"""The embedded lumbar spine phantom: parametric anatomy in mm, CT/MRI/X-ray with exact truth.

Two realism presets (:mod:`lumbarlab.phantom.realism`): ``"clinical"`` (default) with the anatomy, texture and
acquisition physics of real scans, ``"teaching"`` with the same anatomy as a clean cartoon.

Example:
    >>> from lumbarlab.phantom import make_case
    >>> case = make_case(seed := 3, slip={"L4": 30}, cobb=12)
    >>> case.ct.array.shape, case.lateral.image.shape, case.truth["realism"]["preset"]
    ((160, 160, 200), (200, 160), 'clinical')
    >>> make_case(3, modalities=(), realism="teaching").params.acquisition
    {}
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
from lumbarlab.phantom.realism import REALISMS, preset

__all__ = [
    "Case", "make_case", "centroids", "MODALITIES", "PhantomParams", "sample_params",
    "VERTEBRAE", "LUMBAR", "DISCS", "VERSE_LABEL", "DISC_LABEL", "CANAL_LABEL", "Material", "to_spider",
    "REALISMS", "preset",
]
