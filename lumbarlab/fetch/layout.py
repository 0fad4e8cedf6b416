"""The converted-dataset layout as typed records: what ``index.json`` holds, read in one place.

A converted dataset is a folder::

    index.json      dataset, title, licence, citation, source, cases[]
    images/         one image per case (NIfTI, or PNG for radiographs)
    labels/         label maps in lumbarlab's (VerSe) values
    landmarks/      corner CSVs (radiographs)

Each case is a :class:`CaseRecord`; an MRI study lists its image stacks as :class:`SeriesRecord`. Converters
write plain dicts (``to_dict``); everything that reads a converted folder goes through :func:`read_index`, so a
key is spelled once.

Example:
    >>> import json, tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> case = {"id": "c1", "modality": "CT", "image": "images/c1.nii.gz", "label": "labels/c1.nii.gz"}
    >>> _ = (root / "index.json").write_text(json.dumps({"dataset": "verse20", "cases": [case]}))
    >>> index = read_index(root)
    >>> index.dataset, index.cases[0].label, index.path(index.cases[0].image).name
    ('verse20', 'labels/c1.nii.gz', 'c1.nii.gz')
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from lumbarlab.errors import LumbarLabError

__all__ = ["SeriesRecord", "CaseRecord", "ConvertedIndex", "read_index"]


def _known(cls, data: dict) -> tuple[dict, dict]:
    """(fields of ``cls`` found in ``data``, everything else) — unknown keys are kept, not lost."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}, {k: v for k, v in data.items() if k not in names}


@dataclass(frozen=True)
class SeriesRecord:
    """One image stack of an MRI study: its file, plane ("sagittal", "axial", "coronal"), sequence ("T1",
    "T2", …), the scanner's description, and for a series cut into angled stacks, which stack it is and the
    InstanceNumbers of its slices in order."""

    image: str
    plane: str = ""
    sequence: str = ""
    description: str = ""
    series: str | int | None = None
    stack: int = 1
    stacks: int = 1
    slices: int = 0
    instances: tuple[int, ...] = ()
    spacing: tuple[float, ...] = ()
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> SeriesRecord:
        known, extra = _known(cls, data)
        if "image" not in known:
            raise LumbarLabError(f"a series record needs an 'image', got keys {sorted(data)}.")
        known["instances"] = tuple(int(v) for v in known.get("instances", ()))
        known["spacing"] = tuple(float(v) for v in known.get("spacing", ()))
        return cls(**known, extra=extra)

    def to_dict(self) -> dict:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "extra"}
        d["instances"], d["spacing"] = list(self.instances), list(self.spacing)
        return {**d, **self.extra}


@dataclass(frozen=True)
class CaseRecord:
    """One case: ``id``, ``modality`` ("CT", "MRI", "X-ray"), its image, label map and landmark files (paths
    relative to the dataset folder, or None), a radiograph's ``view``, its MRI ``series``, gradings
    (``severity``: level → grade) and free-text ``notes``. Keys a converter adds beyond these stay in ``extra``."""

    id: str
    modality: str = ""
    image: str | None = None
    label: str | None = None
    landmarks: str | None = None
    view: str | None = None
    series: tuple[SeriesRecord, ...] = ()
    severity: dict = field(default_factory=dict)
    notes: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> CaseRecord:
        known, extra = _known(cls, data)
        if "id" not in known:
            raise LumbarLabError(f"a case record needs an 'id', got keys {sorted(data)}.")
        known["id"] = str(known["id"])
        known["series"] = tuple(SeriesRecord.from_dict(s) for s in known.get("series", ()))
        return cls(**known, extra=extra)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        d["series"] = [s.to_dict() for s in self.series]
        return {k: v for k, v in {**d, **self.extra}.items() if v not in (None, (), [], {})}


@dataclass(frozen=True)
class ConvertedIndex:
    """A converted dataset: its folder, name, title, licence, citation and cases."""

    root: Path
    dataset: str
    cases: tuple[CaseRecord, ...]
    title: str = ""
    license: str = ""
    citation: str = ""
    extra: dict = field(default_factory=dict)

    def path(self, relative: str) -> Path:
        """A case's file as a path on disk."""
        return self.root / relative


def read_index(root) -> ConvertedIndex:
    """The converted dataset in ``root`` (its ``index.json``), or LumbarLabError saying how to make one."""
    root = Path(root).expanduser()
    path = root / "index.json"
    if not path.exists():
        raise LumbarLabError(f"{root}: no index.json; convert the dataset with `lumbarlab fetch NAME` first.")
    try:
        data = json.loads(path.read_text())
        cases = tuple(CaseRecord.from_dict(c) for c in data.get("cases", []))
    except (json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise LumbarLabError(f"{path}: not a lumbarlab index ({exc}); convert the dataset again.") from exc
    known = {"dataset", "cases", "title", "license", "citation"}
    return ConvertedIndex(root, str(data.get("dataset", "")), cases, str(data.get("title", "")),
                          str(data.get("license", "")), str(data.get("citation", "")),
                          {k: v for k, v in data.items() if k not in known})
