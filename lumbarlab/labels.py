"""The lab's one table of label values, and the conventions of the public datasets it reads.

lumbarlab labels structures with VerSe's values (Sekuboyina et al., Med Image Anal 2021; the
``anjany/verse`` README): 1–7 C1–C7, 8–19 T1–T12, 20–25 L1–L6, 26 sacrum, 27 coccyx, 28 T13. VerSe has no
discs or canal, so lumbarlab adds them: a disc is ``100 + the VerSe value of the vertebra above it``
(119 = T12/L1 … 124 = L5/S1) and the spinal canal is 200. lumbarlab's "S1" is VerSe's sacrum (26): the
whole sacrum, S1–S5.

SPIDER (van der Graaf et al., Sci Data 2024, and the challenge's data page) numbers vertebrae from the bottom:
1 = L5 … 6 = T12 (101–125 the same vertebrae partly in the field of view), the canal 100, discs from
201 = L5/S1 upwards, and labels no sacrum; :func:`spider_to_verse` and :func:`verse_to_spider` convert.

TotalSegmentator v2 (Wasserthal et al., Radiol Artif Intell 2023; its ``total`` task, class map in
``totalsegmentator/map_to_binary.py``) numbers the spine the other way round and inside a map of 117
structures: 25 sacrum, 26 vertebrae_S1, 27 L5, 28 L4, 29 L3, 30 L2, 31 L1, 32 T12, 33 T11 … 43 T1,
44 C7 … 50 C1, 79 spinal_cord. :data:`TOTALSEGMENTATOR_V2_TO_VERSE` maps its vertebrae to VerSe values
(sacrum and S1 both to 26, since lumbarlab's S1 is the whole sacrum); every other structure (organs,
muscles, ribs, the cord) maps to background.

Example:
    >>> VERSE_LABEL["L1"], DISC_LABEL["L4-L5"], LABEL_NAMES[124]
    (20, 123, 'L5-S1')
    >>> import numpy as np
    >>> to_verse(np.array([31, 27, 25, 26, 5]), "totalsegmentator").tolist()  # L1, L5, sacrum, S1, liver
    [20, 24, 26, 26, 0]
"""

from __future__ import annotations

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = [
    "VERTEBRAE", "LUMBAR", "DISCS", "VERSE_LABEL", "DISC_LABEL", "CANAL_LABEL", "LABEL_NAMES",
    "TOTALSEGMENTATOR_V2", "TOTALSEGMENTATOR_V2_TO_VERSE", "TOTALSEGMENTATOR_NAMES_TO_VERSE", "CONVENTIONS",
    "detect_convention", "to_verse", "spider_to_verse", "spider_unmapped", "verse_to_spider", "SPIDER_CANAL",
    "parse_level", "parse_disc",
]

#: Vertebrae of the lab (the phantom's field) from top to bottom.
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

#: TotalSegmentator v2 ``total`` task: the spine's values → structure names.
TOTALSEGMENTATOR_V2: dict[int, str] = {
    25: "sacrum", 26: "vertebrae_S1",
    **{27 + i: f"vertebrae_L{5 - i}" for i in range(5)},
    **{32 + i: f"vertebrae_T{12 - i}" for i in range(12)},
    **{44 + i: f"vertebrae_C{7 - i}" for i in range(7)},
    79: "spinal_cord",
}
#: TotalSegmentator v2 vertebra values → VerSe values (sacrum and vertebrae_S1 → 26); others → background.
TOTALSEGMENTATOR_V2_TO_VERSE: dict[int, int] = {
    25: 26, 26: 26,
    **{27 + i: 24 - i for i in range(5)},  # L5 … L1 → 24 … 20
    **{32 + i: 19 - i for i in range(12)},  # T12 … T1 → 19 … 8
    **{44 + i: 7 - i for i in range(7)},  # C7 … C1 → 7 … 1
}

#: TotalSegmentator's one-file-per-structure names (its dataset release) → VerSe values, for the vertebrae.
TOTALSEGMENTATOR_NAMES_TO_VERSE: dict[str, int] = {
    TOTALSEGMENTATOR_V2[value]: verse for value, verse in TOTALSEGMENTATOR_V2_TO_VERSE.items()
}

SPIDER_CANAL = 100

CONVENTIONS = ("verse", "totalsegmentator", "spider")


def spider_to_verse(mask: np.ndarray) -> np.ndarray:
    """SPIDER mask values → lumbarlab's (VerSe) values (uint16): vertebra = 25 − SPIDER number (L5 = 24 …
    T12 = 19; 101–124, partial vertebrae, likewise), disc = 100 + the vertebra above (201 = L5/S1 → 124), canal
    100 → 200. SPIDER labels no sacrum, so 26 never occurs; values outside these ranges become background
    (:func:`spider_unmapped` lists them).

    Example:
        >>> spider_to_verse(np.array([1, 5, 201, 100, 0])).tolist()
        [24, 20, 124, 200, 0]
    """
    m = np.asarray(mask).astype(np.int32)
    out = np.zeros(m.shape, np.uint16)
    vert = (m >= 1) & (m <= 24)
    out[vert] = 25 - m[vert]
    partial = (m >= 101) & (m <= 124)
    out[partial] = 25 - (m[partial] - 100)
    disc = (m >= 201) & (m <= 224)
    out[disc] = 100 + 25 - (m[disc] - 200)
    out[m == SPIDER_CANAL] = CANAL_LABEL
    return out


def spider_unmapped(mask: np.ndarray) -> list[int]:
    """SPIDER values :func:`spider_to_verse` has no lumbarlab label for: anything outside 1–24, 100, 101–124
    and 201–224 (25, 125 and 225 would lie above C1 when L5 = 1).

    Example:
        >>> spider_unmapped(np.array([0, 1, 100, 250]))
        [250]
    """
    values = np.unique(np.asarray(mask).astype(np.int64))
    return [int(v) for v in values[(values != 0) & (spider_to_verse(values) == 0)]]  # every known value maps to > 0


def verse_to_spider(labels: np.ndarray) -> np.ndarray:
    """lumbarlab's (VerSe) values → SPIDER's (uint16): vertebrae from the bottom (L5 = 1 … T12 = 6), discs from 201
    (L5/S1), the canal 100; the sacrum, which SPIDER does not label, becomes background.

    Example:
        >>> verse_to_spider(np.array([24, 19, 124, 200, 26])).tolist()
        [1, 6, 201, 100, 0]
    """
    lut = np.zeros(256, dtype=np.uint16)
    for rank, name in enumerate(reversed(VERTEBRAE[:-1]), start=1):  # L5=1, L4=2, ...
        lut[VERSE_LABEL[name]] = rank
    for rank, disc in enumerate(reversed(DISCS), start=201):  # L5-S1=201, ...
        lut[DISC_LABEL[disc]] = rank
    lut[CANAL_LABEL] = SPIDER_CANAL
    return lut[np.asarray(labels).astype(np.int64)]


def detect_convention(values) -> str:
    """"verse" or "totalsegmentator" for the set of label values of a map, or LumbarLabError when the
    values do not tell.

    A TotalSegmentator v2 map holds T12–L3 as 29–32, values VerSe never uses for vertebrae (VerSe stops at
    28), and usually organs too; a VerSe-style map holds lumbar values 20–24, no coccyx (27, which VerSe
    does not label: there it is TotalSegmentator's L5) and nothing above 28 except lumbarlab's discs
    (119–124) and canal (200).

    Example:
        >>> detect_convention([0, 20, 21, 22, 23, 24, 26]), detect_convention([0, 5, 27, 28, 29, 30, 31, 79])
        ('verse', 'totalsegmentator')
    """
    present = {int(v) for v in np.unique(np.asarray(values)) if int(v) != 0}
    lumbarlab_extra = set(DISC_LABEL.values()) | {CANAL_LABEL}
    if present & set(range(29, 33)):
        return "totalsegmentator"
    if present & set(range(20, 25)) and 27 not in present and not (present - set(range(1, 29)) - lumbarlab_extra):
        return "verse"
    raise LumbarLabError(f"cannot tell the label convention from the values {sorted(present)[:12]}; pass "
                         f"convention='verse' or 'totalsegmentator'.")


def to_verse(array: np.ndarray, convention: str = "verse") -> np.ndarray:
    """A label map in lumbarlab's (VerSe) values: unchanged for ``"verse"``; for ``"totalsegmentator"``
    (v2 ``total``) its vertebrae are renumbered by :data:`TOTALSEGMENTATOR_V2_TO_VERSE` and everything
    else becomes background; ``"spider"`` goes through :func:`spider_to_verse`. ``"auto"`` asks
    :func:`detect_convention` (which does not guess SPIDER: its values overlap VerSe's).

    Example:
        >>> to_verse(np.array([[32, 31], [26, 25]]), "totalsegmentator").tolist()
        [[19, 20], [26, 26]]
    """
    arr = np.asarray(array)
    convention = str(convention).lower()
    if convention == "auto":
        convention = detect_convention(arr)
    if convention == "verse":
        return arr
    if convention == "spider":
        return spider_to_verse(arr)
    if convention != "totalsegmentator":
        raise LumbarLabError(f"unknown label convention {convention!r}; use {', '.join(map(repr, CONVENTIONS))} "
                             "or 'auto'.")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise LumbarLabError(f"TotalSegmentator v2 labels run 0–117; this map holds {arr.min()} … {arr.max()}.")
    lut = np.zeros(256, dtype=np.uint8)
    for src, dst in TOTALSEGMENTATOR_V2_TO_VERSE.items():
        lut[src] = dst
    return lut[arr.astype(np.int64)]


def parse_level(text: str) -> str:
    """Normalise a vertebra name ("l4", "L4") or raise LumbarLabError listing valid ones.

    Example:
        >>> parse_level(" l4 ")
        'L4'
    """
    name = str(text).strip().upper()
    if name not in VERTEBRAE:
        raise LumbarLabError(f"unknown vertebra {text!r}; use one of {', '.join(VERTEBRAE)}.")
    return name


def parse_disc(text: str) -> str:
    """Normalise a disc name ("L4-L5", "l4/l5", "L4L5") or raise LumbarLabError.

    Example:
        >>> parse_disc("l4/l5"), parse_disc("L5S1")
        ('L4-L5', 'L5-S1')
    """
    name = str(text).strip().upper().replace("/", "-").replace("_", "-")
    if "-" not in name:
        for v in VERTEBRAE:
            if name.startswith(v) and name[len(v):] in VERTEBRAE:
                name = f"{v}-{name[len(v):]}"
                break
    if name not in DISCS:
        raise LumbarLabError(f"unknown disc {text!r}; use one of {', '.join(DISCS)}.")
    return name
