"""Label values of the phantom's ground truth, and its material codes.

Structure labels follow VerSe (Sekuboyina et al., 2021; Löffler et al., 2020): 19 = T12,
20–24 = L1–L5, 26 = sacrum. VerSe has no discs or canal, so lumbarlab adds them:
a disc is ``100 + VerSe label of the vertebra above it`` (119 = T12/L1 … 124 = L5/S1),
and the spinal canal (thecal sac with its CSF and nerve roots) is 200.

SPIDER (van der Graaf et al., 2024) numbers vertebrae from the bottom (L5 = 1), discs
from 201 (L5/S1) and the canal as 100; :func:`to_spider` converts.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "VERTEBRAE", "LUMBAR", "DISCS", "VERSE_LABEL", "DISC_LABEL", "CANAL_LABEL",
    "LABEL_NAMES", "SPIDER_CANAL", "to_spider", "Material", "parse_level", "parse_disc",
]

#: Vertebrae of the phantom from top to bottom.
VERTEBRAE: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
LUMBAR: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5")
#: Discs from top to bottom, named "upper-lower".
DISCS: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in zip(VERTEBRAE[:-1], VERTEBRAE[1:], strict=True))

VERSE_LABEL: dict[str, int] = {"T12": 19, "L1": 20, "L2": 21, "L3": 22, "L4": 23, "L5": 24, "S1": 26}
DISC_LABEL: dict[str, int] = {d: 100 + VERSE_LABEL[d.split("-")[0]] for d in DISCS}
CANAL_LABEL = 200
LABEL_NAMES: dict[int, str] = {
    **{v: k for k, v in VERSE_LABEL.items()},
    **{v: k for k, v in DISC_LABEL.items()},
    CANAL_LABEL: "canal",
}
SPIDER_CANAL = 100


def to_spider(labels: np.ndarray) -> np.ndarray:
    """Map VerSe-style phantom labels to SPIDER's values (uint16).

    Vertebrae are numbered from the bottom, L5 = 1 … T12 = 6; discs from 201 (L5/S1);
    the canal is 100. SPIDER numbers no sacrum, so the sacrum becomes background (0).
    """
    lut = np.zeros(256, dtype=np.uint16)
    for rank, name in enumerate(reversed(VERTEBRAE[:-1]), start=1):  # L5=1, L4=2, ...
        lut[VERSE_LABEL[name]] = rank
    for rank, disc in enumerate(reversed(DISCS), start=201):  # L5-S1=201, ...
        lut[DISC_LABEL[disc]] = rank
    lut[CANAL_LABEL] = SPIDER_CANAL
    return lut[labels]


def parse_level(text: str) -> str:
    """Normalise a vertebra name ("l4", "L4") or raise LumbarLabError listing valid ones."""
    from lumbarlab.errors import LumbarLabError

    name = str(text).strip().upper()
    if name not in VERTEBRAE:
        raise LumbarLabError(f"unknown vertebra {text!r}; use one of {', '.join(VERTEBRAE)}.")
    return name


def parse_disc(text: str) -> str:
    """Normalise a disc name ("L4-L5", "l4/l5", "L4L5") or raise LumbarLabError."""
    from lumbarlab.errors import LumbarLabError

    name = str(text).strip().upper().replace("/", "-").replace("_", "-")
    if "-" not in name:
        for v in VERTEBRAE:
            if name.startswith(v) and name[len(v):] in VERTEBRAE:
                name = f"{v}-{name[len(v):]}"
                break
    if name not in DISCS:
        raise LumbarLabError(f"unknown disc {text!r}; use one of {', '.join(DISCS)}.")
    return name


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
    NUCLUS0 = 16     # + disc index (0 = T12-L1 … 5 = L5-S1)
    ANNULUS0 = 24    # + disc index
    TRABECULAR0 = 32  # + vertebra index (0 = T12 … 6 = S1)
    COUNT = 48
