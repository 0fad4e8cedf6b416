"""Converters from each dataset's own layout to lumbarlab's.

lumbarlab's layout (what :mod:`lumbarlab.datasets` reads)::

    <dest>/<dataset>/index.json           dataset, source, licence, citation, cases[]
    <dest>/<dataset>/images/<case>.nii.gz  (3D; geometry kept) or <case>.png (2D radiographs)
    <dest>/<dataset>/labels/<case>.nii.gz  lumbarlab's label values (VerSe's: T12 19, L1–L5 20–24, sacrum 26;
                                           disc = 100 + the vertebra above, canal 200)
    <dest>/<dataset>/landmarks/<case>.csv  vertebral corners (lumbarlab.measure corner CSV)

Each converter takes the extracted source folder and the (temporary) output folder and returns the
case records of ``index.json``. A converter never writes into the source.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import TOTALSEGMENTATOR_NAMES_TO_VERSE, VERSE_LABEL, spider_to_verse, spider_unmapped

__all__ = ["CONVERTERS", "spider_to_lumbarlab", "spider_unmapped", "totalsegmentator_labels", "read_notes"]


def _find(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file() and not p.name.startswith("._"))


def _write_labels(volume, array: np.ndarray, path: Path) -> None:
    from lumbarlab.io import write_image

    write_image(volume.with_array(array.astype(np.uint16)), path)


# MRI series: which sequence and plane (used by the RSNA and Lumbar Spine MRI converters)
_SEQUENCE = (("T1", re.compile(r"t1", re.I)), ("T2", re.compile(r"t2", re.I)), ("STIR", re.compile(r"stir", re.I)))


def _sequence(description: str) -> str:
    """"T1", "T2" or "STIR" as named in a series description ("T2_TSE_SAG", "Sagittal T2/STIR" → "T2"), else ""."""
    return next((name for name, pattern in _SEQUENCE if pattern.search(description)), "")


def _write_stacks(series, name: str, out: Path, where: str) -> list[dict]:
    """Each stack of a scanned DICOM series (:func:`lumbarlab.dicom.split_stacks`) → ``images/<name>[_k].nii.gz``;
    one record per stack with its plane, slice count, spacing and the InstanceNumbers of its slices in the
    volume's k order (annotations such as RSNA's coordinates name instances)."""
    from lumbarlab.dicom import read_dicom_files, slice_plane, split_stacks
    from lumbarlab.io import write_image

    stacks = split_stacks(series.slices)
    records = []
    for k, stack in enumerate(stacks):
        file = f"{name}_{k + 1}" if len(stacks) > 1 else name
        volume = read_dicom_files([s.path for s in stack], where)
        write_image(volume, out / "images" / f"{file}.nii.gz")
        records.append({"stack": k + 1, "stacks": len(stacks), "plane": slice_plane(stack[0].orientation),
                        "slices": len(stack), "instances": [s.instance for s in stack],
                        "image": f"images/{file}.nii.gz", "spacing": [float(v) for v in volume.spacing]})
    return records


# -- SPIDER -------------------------------------------------------------------------------------------
#: SPIDER → lumbarlab values, and what has no lumbarlab label (the one table lives in :mod:`lumbarlab.labels`).
spider_to_lumbarlab = spider_to_verse


def convert_spider(source: Path, out: Path) -> list[dict]:
    from lumbarlab.io import read_image, write_image

    cases = []
    masks = {p.name: p for p in _find(source, "*.mha") if p.parent.name == "masks"}
    for image_path in (p for p in _find(source, "*.mha") if p.parent.name == "images"):
        case = image_path.name[: -len(".mha")]
        image = read_image(image_path)
        write_image(image, out / "images" / f"{case}.nii.gz")
        record = {"id": case, "modality": "MRI", "sequence": case.split("_", 1)[1] if "_" in case else "",
                  "image": f"images/{case}.nii.gz", "spacing": [float(s) for s in image.spacing]}
        if image_path.name in masks:
            mask = read_image(masks[image_path.name])
            _write_labels(mask, spider_to_lumbarlab(mask.array), out / "labels" / f"{case}.nii.gz")
            record["label"] = f"labels/{case}.nii.gz"
            unmapped = spider_unmapped(mask.array)
            if unmapped:  # kept visible rather than silently becoming background
                record["unmapped_labels"] = unmapped
        cases.append(record)
    if not cases:
        raise LumbarLabError(f"{source}: no SPIDER images (images/*.mha) found.")
    for name in ("overview.csv", "radiological_gradings.csv"):
        found = _find(source, name)
        if found:
            shutil.copy2(found[0], out / name)
    return cases


# -- VerSe --------------------------------------------------------------------------------------------
def convert_verse(source: Path, out: Path) -> list[dict]:
    from lumbarlab.io import read_image

    cases = []
    labels = {p.name.replace("_seg-vert_msk.nii.gz", ""): p for p in _find(source, "*_seg-vert_msk.nii.gz")}
    centroids = {re.sub(r"_seg-(vb|subreg)_ctd\.json$", "", p.name): p for p in _find(source, "*_ctd.json")}
    for image_path in _find(source, "*_ct.nii.gz"):
        stem = image_path.name[: -len("_ct.nii.gz")]
        image = read_image(image_path)  # validates the file before it is copied
        (out / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy2(image_path, out / "images" / f"{stem}.nii.gz")
        record = {"id": stem, "modality": "CT", "image": f"images/{stem}.nii.gz",
                  "spacing": [float(s) for s in image.spacing]}
        if stem in labels:  # VerSe values are lumbarlab's values
            (out / "labels").mkdir(parents=True, exist_ok=True)
            shutil.copy2(labels[stem], out / "labels" / f"{stem}.nii.gz")
            record["label"] = f"labels/{stem}.nii.gz"
        if stem in centroids:
            data = json.loads(centroids[stem].read_text())
            record["centroids"] = [c for c in data if isinstance(c, dict) and "label" in c]
            record["centroid_axes"] = next((c.get("direction") for c in data if isinstance(c, dict) and "direction" in c), None)
        cases.append(record)
    if not cases:
        raise LumbarLabError(f"{source}: no VerSe CT files (*_ct.nii.gz) found.")
    return cases


# -- TotalSegmentator -----------------------------------------------------------------------------------
#: TotalSegmentator structure file → lumbarlab label: T12–L5, and S1 with the rest of the sacrum (one bone in lumbarlab).
TOTALSEG_LABELS = {name: value for name, value in TOTALSEGMENTATOR_NAMES_TO_VERSE.items() if value >= VERSE_LABEL["T12"]}


def totalsegmentator_labels(folder: Path):
    """Combine TotalSegmentator's one-file-per-structure masks of a case into one lumbarlab label Volume."""
    from lumbarlab.io import read_image

    combined, reference = None, None
    for name, value in TOTALSEG_LABELS.items():
        path = folder / f"{name}.nii.gz"
        if not path.exists():
            continue
        vol = read_image(path)
        if combined is None:
            reference, combined = vol, np.zeros(vol.shape, np.uint16)
        elif vol.shape != combined.shape:
            raise LumbarLabError(f"{path}: grid {vol.shape} differs from the case's {combined.shape}.")
        combined[np.asarray(vol.array) > 0] = value
    return None if combined is None else reference.with_array(combined)


def convert_totalsegmentator(source: Path, out: Path) -> list[dict]:
    from lumbarlab.io import read_image

    cases = []
    for ct in _find(source, "ct.nii.gz"):
        case = ct.parent.name
        image = read_image(ct)
        (out / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy2(ct, out / "images" / f"{case}.nii.gz")
        record = {"id": case, "modality": "CT", "image": f"images/{case}.nii.gz",
                  "spacing": [float(s) for s in image.spacing]}
        labels = totalsegmentator_labels(ct.parent / "segmentations")
        if labels is not None:
            _write_labels(labels, labels.array, out / "labels" / f"{case}.nii.gz")
            record["label"] = f"labels/{case}.nii.gz"
            record["levels"] = sorted(int(v) for v in np.unique(labels.array) if v)
        cases.append(record)
    if not cases:
        raise LumbarLabError(f"{source}: no TotalSegmentator cases (*/ct.nii.gz) found.")
    meta = _find(source, "meta.csv")
    if meta:
        shutil.copy2(meta[0], out / "meta.csv")
    return cases


# -- BUU-LSPINE -------------------------------------------------------------------------------------------
#: Rows of a BUU-LSPINE lateral annotation, top to bottom: both endplates of L1–L5, then the S1 superior endplate.
BUU_LATERAL_ROWS = tuple((f"L{i}", edge) for i in range(1, 6) for edge in ("superior", "inferior")) + (("S1", "superior"),)


def _numeric_rows(path: Path) -> list[list[float]] | None:
    """The rows of a header-less numeric CSV (BUU-LSPINE's own annotation files), or None for any other CSV."""
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.reader(fh):
            cells = [c.strip() for c in row if c.strip()]
            if not cells:
                continue
            try:
                rows.append([float(c) for c in cells])
            except ValueError:
                return None
    return rows or None


def buu_corners(rows: list[list[float]], view: str, source: str = "") -> tuple[dict[str, np.ndarray], str]:
    """BUU-LSPINE annotation rows (x1, y1, x2, y2 per endplate, top to bottom) → lumbarlab corners.

    Lateral (11 rows, L1–L5 both endplates then S1 superior): lumbarlab's order is superior-anterior,
    superior-posterior, inferior-posterior, inferior-anterior. Which of a row's two points is anterior is
    decided per image from the S1 endplate, whose anterior corner (the promontory) lies lower on a standing
    lateral film (the sacral slope is positive); every row of the file follows the same column order. S1 gets
    NaN inferior corners. Returns the corners and the image side the anterior corners are on.
    AP (10 rows, L1–L5): points are sorted by x, giving lumbarlab's superior image-left, superior image-right,
    inferior image-right, inferior image-left. Coordinates are pixels (x = column, y = row).
    """
    a = np.asarray([r[:4] for r in rows], dtype=float)
    if a.ndim != 2 or a.shape[1] != 4:
        raise LumbarLabError(f"{source}: BUU rows need four numbers (x1, y1, x2, y2), got {[len(r) for r in rows]}.")
    if view == "lateral":
        if len(a) < len(BUU_LATERAL_ROWS):
            raise LumbarLabError(f"{source}: a lateral BUU annotation has {len(BUU_LATERAL_ROWS)} rows (L1–L5 endplates "
                                 f"and S1 superior), found {len(a)}.")
        s1 = a[len(BUU_LATERAL_ROWS) - 1]
        first_anterior = s1[1] >= s1[3]  # the lower point (larger row) is the promontory
        pts = {}
        for (level, edge), (x1, y1, x2, y2) in zip(BUU_LATERAL_ROWS, a, strict=False):
            ant, post = ((x1, y1), (x2, y2)) if first_anterior else ((x2, y2), (x1, y1))
            pts.setdefault(level, {})[edge] = (ant, post)
        out = {}
        for level, e in pts.items():
            inf = e.get("inferior", ((np.nan, np.nan), (np.nan, np.nan)))
            out[level] = np.array([e["superior"][0], e["superior"][1], inf[1], inf[0]], dtype=float)
        side = "left" if out["S1"][0, 0] < out["S1"][1, 0] else "right"
        return out, side
    if len(a) < 10:
        raise LumbarLabError(f"{source}: an AP BUU annotation has 10 rows (L1–L5 endplates), found {len(a)}.")
    out = {}
    for i in range(5):
        sup, inf = a[2 * i].reshape(2, 2), a[2 * i + 1].reshape(2, 2)
        sup, inf = sup[np.argsort(sup[:, 0])], inf[np.argsort(inf[:, 0])]
        out[f"L{i + 1}"] = np.array([sup[0], sup[1], inf[1], inf[0]])
    return out, ""


def _buu_view(image_path: Path, n_rows: int | None) -> str:
    for part in reversed(image_path.parts[:-1]):  # the release's LA/ and AP/ folders
        if part.upper() in ("AP", "LA", "LAT", "LATERAL"):
            return "ap" if part.upper() == "AP" else "lateral"
    if re.search(r"(^|[_-])ap($|[_-])", image_path.stem, re.I):
        return "ap"
    return "ap" if n_rows == 10 else "lateral"


def convert_buu(source: Path, out: Path) -> list[dict]:
    """Radiographs (JPEG/PNG) with an annotation CSV of the same stem, in either layout:

    * BUU-LSPINE's release: ``<root>/AP/<case>.jpg`` and ``<root>/LA/<case>.jpg``, each with ``<case>.csv`` of
      header-less rows ``x1,y1,x2,y2`` per endplate, top to bottom (see :func:`buu_corners`);
    * lumbarlab's corner CSV (``level,edge,x_first,…``, what ``lumbarlab phantom`` writes).
    """
    from lumbarlab.io import read_png, write_png
    from lumbarlab.measure import read_corners_csv, write_corners_csv

    cases = []
    for image_path in sorted(_find(source, "*.png") + _find(source, "*.jpg") + _find(source, "*.jpeg")):
        table = image_path.with_suffix(".csv")
        if not table.exists():
            continue
        rows = _numeric_rows(table)
        view = _buu_view(image_path, len(rows) if rows else None)
        side = ""
        if rows is not None:
            corners, side = buu_corners(rows, view, str(table))
        else:
            corners = read_corners_csv(table)
        stem = image_path.stem if image_path.parent.name.upper() not in ("AP", "LA") else f"{image_path.stem}_{view}"
        image = read_png(image_path)
        write_png(image, out / "images" / f"{stem}.png", bits=16 if image.dtype == np.uint16 else 8)
        write_corners_csv(corners, out / "landmarks" / f"{stem}.csv")
        record = {"id": stem, "modality": "X-ray", "view": view, "image": f"images/{stem}.png",
                  "landmarks": f"landmarks/{stem}.csv", "levels": list(corners), "shape": list(image.shape),
                  "annotation": "buu" if rows is not None else "lumbarlab"}
        if side:
            record["anterior_side"] = side
        cases.append(record)
    if not cases:
        raise LumbarLabError(f"{source}: no radiographs with an annotation CSV of the same name found "
                             "(expected LA/<case>.jpg + LA/<case>.csv).")
    return cases


# -- RSNA 2024 ----------------------------------------------------------------------------------------------
RSNA_SEVERITY = {"Normal/Mild": 0, "Moderate": 1, "Severe": 2}


def convert_rsna(source: Path, out: Path) -> list[dict]:
    """Studies → one NIfTI per stack of each series (axial series often hold several angled stacks), with
    per-level severities (0 normal/mild, 1 moderate, 2 severe) and the annotated coordinates (series, instance,
    condition, level, x, y in pixels; each stack lists its instances in slice order)."""
    from lumbarlab.dicom import scan_dicom

    train = _find(source, "train.csv")
    if not train:
        raise LumbarLabError(f"{source}: train.csv of the RSNA 2024 release not found.")
    with open(train[0], newline="") as fh:
        rows = {r["study_id"]: r for r in csv.DictReader(fh)}
    coords: dict[str, list[dict]] = {}
    for path in _find(source, "train_label_coordinates.csv"):
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                coords.setdefault(r["study_id"], []).append(
                    {"series": r["series_id"], "instance": int(r["instance_number"]), "condition": r["condition"],
                     "level": r["level"], "x": float(r["x"]), "y": float(r["y"])})
    descriptions: dict[str, str] = {}
    for path in _find(source, "train_series_descriptions.csv"):
        with open(path, newline="") as fh:
            descriptions.update({r["series_id"]: r["series_description"] for r in csv.DictReader(fh)})
    cases = []
    for study, row in rows.items():
        severities = {}
        for key, value in row.items():
            if key == "study_id":
                continue
            if value and value not in RSNA_SEVERITY:
                raise LumbarLabError(f"train.csv, study {study}: unknown severity {value!r} in {key}.")
            severities[key] = RSNA_SEVERITY.get(value) if value else None
        series = []
        for folder in sorted(p for p in source.rglob(f"train_images/{study}/*") if p.is_dir()):
            description = descriptions.get(folder.name, "")
            for scanned in scan_dicom(folder):  # one series per folder; axial ones may hold several angled stacks
                for record in _write_stacks(scanned, f"{study}_{folder.name}", out, str(folder)):
                    series.append({"series": folder.name, "description": description,
                                   "sequence": _sequence(description), **record})
        cases.append({"id": study, "modality": "MRI", "severity": severities, "series": series,
                      "coordinates": coords.get(study, [])})
    return cases


# -- AASCE 2019 (SpineWeb dataset 16, "boostnet_labeldata") ----------------------------------------------------
#: The 17 vertebrae AASCE annotates, top to bottom; lumbarlab keeps T12–L5.
AASCE_LEVELS = tuple(f"T{i}" for i in range(1, 13)) + ("L1", "L2", "L3", "L4", "L5")


def _segments_cross(a: np.ndarray, b: np.ndarray) -> bool:
    def side(p, q, r):
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    return side(a[0], a[1], b[0]) != side(a[0], a[1], b[1]) and side(b[0], b[1], a[0]) != side(b[0], b[1], a[1])


def endplate_quad(points: np.ndarray) -> np.ndarray:
    """Four corner points of one vertebra on an AP view, in any order → lumbarlab's AP order (superior image-left,
    superior image-right, inferior image-right, inferior image-left).

    Of the three ways to pair four points, one pairs the diagonals (its segments cross); of the other two, the
    endplates are the longer pair, since a vertebral body on an AP view is wider than it is tall. This holds at
    any tilt below 90°. The upper pair is the superior endplate; each pair is then ordered by x.
    """
    p = np.asarray(points, dtype=float).reshape(4, 2)
    pairings = [(p[[i, j]], p[[k, m]]) for (i, j), (k, m) in (((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)))]
    sides = [q for q in pairings if not _segments_cross(*q)]
    a, b = max(sides, key=lambda q: np.linalg.norm(q[0][0] - q[0][1]) + np.linalg.norm(q[1][0] - q[1][1]))
    top, bottom = sorted((a, b), key=lambda e: e[:, 1].mean())
    top, bottom = top[np.argsort(top[:, 0])], bottom[np.argsort(bottom[:, 0])]
    return np.array([top[0], top[1], bottom[1], bottom[0]])


def aasce_corners(p2: np.ndarray) -> dict[str, np.ndarray]:
    """AASCE's 68 × (x, y) landmarks (four per vertebra, T1 to L5, top to bottom) → lumbarlab's AP corners of
    T12–L5. The four points of a vertebra are ordered geometrically (:func:`endplate_quad`), not by their position
    in the file: public loaders of the set re-sort them, so the stored order is not relied on."""
    p2 = np.asarray(p2, dtype=float)
    if p2.shape != (68, 2):
        raise LumbarLabError(f"expected 68 landmarks of (x, y), got shape {p2.shape}.")
    out = {}
    for i, level in enumerate(AASCE_LEVELS):
        if level in ("T12", "L1", "L2", "L3", "L4", "L5"):
            out[level] = endplate_quad(p2[4 * i : 4 * i + 4])
    return out


def convert_aasce(source: Path, out: Path) -> list[dict]:
    """Images ``data/<split>/<name>.jpg`` with ``labels/<split>/<name>.jpg.mat`` (variable ``p2``) and, per split,
    ``filenames.csv`` + ``angles.csv`` (the three Cobb angles in degrees, in the same order)."""
    from scipy.io import loadmat

    from lumbarlab.io import read_png, write_png
    from lumbarlab.measure import write_corners_csv

    images = {p.name: p for p in _find(source, "*.jpg") + _find(source, "*.png")}
    angles: dict[str, list[float]] = {}
    for names_csv in _find(source, "filenames.csv"):
        angle_csv = names_csv.with_name("angles.csv")
        if angle_csv.exists():
            names = [r[0] for r in csv.reader(open(names_csv, newline="")) if r]
            rows = [[float(v) for v in r] for r in csv.reader(open(angle_csv, newline="")) if r]
            angles.update(zip(names, rows, strict=False))
    cases = []
    for mat in _find(source, "*.mat"):
        name = mat.name[: -len(".mat")]
        if name not in images:
            continue
        try:
            p2 = loadmat(str(mat))["p2"]
        except Exception as exc:
            raise LumbarLabError(f"{mat}: not an AASCE landmark file with a 'p2' variable ({exc}).") from exc
        stem = Path(name).stem
        image = read_png(images[name])
        write_png(image, out / "images" / f"{stem}.png", bits=16 if image.dtype == np.uint16 else 8)
        write_corners_csv(aasce_corners(p2), out / "landmarks" / f"{stem}.csv")
        record = {"id": stem, "modality": "X-ray", "view": "ap", "image": f"images/{stem}.png",
                  "landmarks": f"landmarks/{stem}.csv", "shape": list(image.shape),
                  "split": mat.parent.name}
        if name in angles:
            record["cobb_angles_deg"] = angles[name]
        cases.append(record)
    if not cases:
        raise LumbarLabError(f"{source}: no AASCE images with a landmark .mat of the same name found.")
    return cases


# -- Lumbar Spine MRI (Sudirman et al., Mendeley k57fr854j2) -------------------------------------------------
def _patient_folder(path: Path, source: Path) -> str | None:
    """The nearest folder named by digits only (the release's zero-padded patient numbers, e.g. ``0001``)."""
    for parent in path.relative_to(source).parents:
        if parent.name.isdigit():
            return parent.name
    return None


def read_notes(source: Path) -> dict[str, str]:
    """Radiologists' notes per patient from ``Radiologists Report.xlsx`` (first sheet) or a CSV export, columns
    ``Patient ID`` and ``Clinician's Notes``; keys are zero-padded to the image folders' four digits."""
    rows: list[dict] = []
    for path in _find(source, "*.xlsx"):
        from openpyxl import load_workbook

        try:
            sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
        except Exception as exc:
            raise LumbarLabError(f"{path}: not a readable Excel workbook ({exc}).") from exc
        values = list(sheet.iter_rows(values_only=True))
        if values:
            head = [str(h or "").strip() for h in values[0]]
            rows += [dict(zip(head, r, strict=False)) for r in values[1:]]
    for path in _find(source, "*.csv"):
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows += list(csv.DictReader(fh))
    notes = {}
    for r in rows:
        pid, text = r.get("Patient ID"), r.get("Clinician's Notes")
        if pid not in (None, "") and text:
            key = str(int(float(pid))) if str(pid).replace(".", "", 1).isdigit() else str(pid).strip()
            notes[key.zfill(4)] = str(text).strip()
    return notes


def convert_dicom_studies(source: Path, out: Path) -> list[dict]:
    """Studies of DICOM files (Siemens ``.IMA`` or ``.dcm``, any folder names) → one case per patient with one
    NIfTI per stack of each series (see :func:`lumbarlab.dicom.split_stacks`: the axial blocks angled to each disc
    become separate volumes), its plane, sequence and description; localizers are listed as skipped.
    Patients are the digit-named folders of the release (``01_MRI_Data/0001/…``), else a salted hash of the
    PatientID tag (no identifier reaches file names or index.json).
    Notes: see :func:`read_notes`."""
    from lumbarlab.dicom import scan_dicom

    notes = read_notes(source)
    cases: dict[str, dict] = {}
    for series in scan_dicom(source):
        if not series.slices:
            continue
        first = series.slices[0].path
        patient = _patient_folder(first, source)
        if patient is None:  # never a PatientID in names or index.json: a salted hash stands in for it
            import hashlib

            import pydicom

            pid = str(pydicom.dcmread(str(first), stop_before_pixels=True).get("PatientID", ""))
            patient = "p" + hashlib.sha256(f"lumbarlab:{pid}".encode()).hexdigest()[:10]
        case = cases.setdefault(patient, {"id": patient, "modality": "MRI", "series": [], "skipped": []})
        number = series.number if series.number is not None else len(case["series"]) + len(case["skipped"]) + 1
        if series.localizer:
            case["skipped"].append({"series": number, "description": series.description, "reason": "localizer"})
            continue
        for record in _write_stacks(series, f"{patient}_s{number:02d}", out, f"{first.parent} (series {number})"):
            case["series"].append({"series": number, "description": series.description,
                                   "sequence": _sequence(series.description), **record})
    if not cases:
        raise LumbarLabError(f"{source}: no DICOM images found (expected 01_MRI_Data/<patient>/…/*.ima).")
    for patient, case in cases.items():
        if patient in notes:
            case["notes"] = notes[patient]
    return [cases[k] for k in sorted(cases)]


# -- CTSpine1K -----------------------------------------------------------------------------------------------------
def convert_ctspine1k(source: Path, out: Path) -> list[dict]:
    """``<volumes|data>/<subset>/<case>.nii.gz`` with ``<labels|label>/<subset>/<case>_seg.nii.gz`` → images and
    labels. CTSpine1K labels vertebrae as VerSe does (1–7 C1–C7, 8–19 T1–T12, 20–24 L1–L5, 25 L6), which are
    lumbarlab's values, so they are copied unchanged after a check that they are in range."""
    from lumbarlab.io import read_image

    labels = {p.name[: -len("_seg.nii.gz")]: p for p in _find(source, "*_seg.nii.gz")}
    cases = []
    for image_path in _find(source, "*.nii.gz"):
        if image_path.name.endswith("_seg.nii.gz"):
            continue
        stem = image_path.name[: -len(".nii.gz")]
        image = read_image(image_path)
        (out / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy2(image_path, out / "images" / image_path.name)
        record = {"id": stem, "modality": "CT", "subset": image_path.parent.name, "image": f"images/{image_path.name}",
                  "spacing": [float(s) for s in image.spacing]}
        if stem in labels:
            label = read_image(labels[stem])
            values = np.unique(np.asarray(label.array)).astype(int)
            if values.min() < 0 or values.max() > 28:
                raise LumbarLabError(f"{labels[stem]}: label values {values.tolist()} outside VerSe's 0–28.")
            if label.shape != image.shape:
                raise LumbarLabError(f"{labels[stem]}: grid {label.shape} differs from its CT's {image.shape}.")
            (out / "labels").mkdir(parents=True, exist_ok=True)
            shutil.copy2(labels[stem], out / "labels" / f"{stem}.nii.gz")
            record["label"] = f"labels/{stem}.nii.gz"
            record["levels"] = [int(v) for v in values if v]
        cases.append(record)
    if not cases:
        raise LumbarLabError(f"{source}: no CTSpine1K volumes (volumes/<subset>/*.nii.gz) found.")
    return cases


def index_only(source: Path, out: Path) -> list[dict]:
    """For datasets without a converter: index NIfTI/MHA images (and labels in a folder named like
    ``labels``/``masks``) in place by copying them, geometry untouched."""
    cases = []
    for path in _find(source, "*.nii.gz") + _find(source, "*.mha"):
        kind = "labels" if re.search(r"label|mask|seg", str(path.relative_to(source)), re.I) else "images"
        (out / kind).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out / kind / path.name)
        cases.append({"id": path.name.split(".")[0], "file": f"{kind}/{path.name}", "kind": kind})
    if not cases:
        raise LumbarLabError(f"{source}: no NIfTI or MHA images found to index.")
    return cases


CONVERTERS: dict[str, Callable[[Path, Path], list[dict]]] = {
    "spider": convert_spider, "verse": convert_verse, "totalsegmentator": convert_totalsegmentator,
    "buu": convert_buu, "rsna": convert_rsna, "aasce": convert_aasce, "dicom-studies": convert_dicom_studies,
    "ctspine1k": convert_ctspine1k, "": index_only,
}
