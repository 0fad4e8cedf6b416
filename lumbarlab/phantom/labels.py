"""Label values of the phantom's ground truth, and its material codes.

Structure labels are the lab's one table (:mod:`lumbarlab.labels`, VerSe's values): 19 = T12,
20–24 = L1–L5, 26 = sacrum; discs ``100 + the vertebra above`` (119 = T12/L1 … 124 = L5/S1); the
spinal canal (thecal sac with its CSF and nerve roots) 200. They are re-exported here.

SPIDER (van der Graaf et al., 2024) numbers vertebrae from the bottom (L5 = 1), discs
from 201 (L5/S1) and the canal as 100; :func:`to_spider` converts.
"""

from __future__ import annotations

from lumbarlab.labels import (  # the lab's one table; re-exported here for the phantom's callers
    CANAL_LABEL,
    DISC_LABEL,
    DISCS,
    LABEL_NAMES,
    LUMBAR,
    SPIDER_CANAL,
    VERSE_LABEL,
    VERTEBRAE,
    parse_disc,
    parse_level,
    verse_to_spider,
)

__all__ = [
    "VERTEBRAE", "LUMBAR", "DISCS", "VERSE_LABEL", "DISC_LABEL", "CANAL_LABEL",
    "LABEL_NAMES", "SPIDER_CANAL", "to_spider", "Material", "parse_level", "parse_disc",
]

#: lumbarlab (VerSe) → SPIDER values; the one table lives in :mod:`lumbarlab.labels`.
to_spider = verse_to_spider


class Material:
    """Material codes of the phantom's tissue map (uint8) — what the renderers colour.

    Per-level materials (disc nucleus/annulus, trabecular bone) get their own code so that
    a disc's Pfirrmann grade or a vertebra's density can change its intensity alone.
    """

    AIR = 0
    FAT = 1          # subcutaneous and retroperitoneal fat
    SOFT = 2         # abdominal viscera, lumped
    MUSCLE = 3       # psoas and paraspinal muscles
    EPIDURAL_FAT = 4
    CSF = 5
    NERVE = 6        # conus / cauda equina
    CORTICAL = 7     # cortical shell of the vertebral bodies
    POSTERIOR = 8    # posterior elements (pedicles, lamina, processes), mixed bone
    PELVIS = 9       # iliac wings (clinical realism), mixed bone
    RIB = 10         # ribs of T12 and T11 (clinical realism)
    KIDNEY = 11
    AORTA = 12
    IVC = 13
    LIVER = 14       # liver and spleen tips
    # bowel gas is AIR inside the body
    NUCLUS0 = 16     # + disc index (0 = T12-L1 … 5 = L5-S1)
    ANNULUS0 = 24    # + disc index
    TRABECULAR0 = 32  # + vertebra index (0 = T12 … 6 = S1)
    MODIC1 = 40      # marrow oedema next to a degenerated disc (Modic type 1)
    MODIC2 = 41      # fatty marrow next to a degenerated disc (Modic type 2)
    SCLEROSIS = 42   # sclerotic bone under a degenerated endplate
    COUNT = 48
