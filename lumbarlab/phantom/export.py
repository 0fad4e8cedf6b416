"""Write phantom cases the way the public datasets write theirs.

* CT as VerSe (Sekuboyina et al., 2021): ``sub-<id>_ct.nii.gz``,
  ``sub-<id>_seg-vert_msk.nii.gz`` (vertebrae only, VerSe values) and
  ``sub-<id>_seg-vb_ctd.json`` (centroids: a direction entry, then one entry per label with
  X, Y, Z in voxel coordinates of the written image). lumbarlab adds
  ``sub-<id>_seg-spine_msk.nii.gz`` with discs and canal.
* MRI as SPIDER (van der Graaf et al., 2024): ``images/<id>_t1.mha``, ``images/<id>_t2.mha``
  (thick sagittal slices) and ``masks/<id>_t1.mha``, ``masks/<id>_t2.mha`` with SPIDER's values.
* X-ray as PNG (8-bit) with a label PNG and a BUU-style corner CSV per view: two rows per
  vertebra (its superior and inferior endplate edges), each with the (x, y) pixel positions of
  the edge's first and second corner (first = anterior on lateral, image-left on AP).
* ``truth.json``: every parameter and the measured truth.

A case is written into a temporary folder and renamed into place, so an existing case is
never left half-overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.io import write_image, write_png
from lumbarlab.measure.landmarks import centroids, read_corners_csv, write_corners_csv
from lumbarlab.phantom.case import Case
from lumbarlab.phantom.labels import CANAL_LABEL, DISC_LABEL, VERSE_LABEL, to_spider
from lumbarlab.volume import Volume, axcodes, parse_orientation, reorient

__all__ = ["write_case", "write_corners_csv", "read_corners_csv"]


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj)} is not JSON serialisable")


def _ctd(labels: Volume) -> list[dict]:
    """VerSe centroid entries: the axis codes of the written image, then per label X, Y, Z in its voxels."""
    entries: list[dict] = [{"direction": list(axcodes(labels))}]
    names = {v: k for k, v in VERSE_LABEL.items()}
    for name, xyz in centroids(labels).items():
        lab = VERSE_LABEL.get(name)
        if lab is None:
            continue
        ijk = labels.world_to_index(np.array(xyz))
        entries.append({"label": lab, "X": round(float(ijk[0]), 2), "Y": round(float(ijk[1]), 2), "Z": round(float(ijk[2]), 2)})
        assert names[lab] == name
    return entries


def _write_into(case: Case, folder: Path, case_id: str, orientation: str = "RAS") -> list[str]:
    written: list[str] = []
    lab = reorient(case.labels, orientation)
    vert_only = np.where(np.isin(lab.array, list(VERSE_LABEL.values())), lab.array, 0).astype(np.uint8)
    spine_only = np.where(
        np.isin(lab.array, [*DISC_LABEL.values(), CANAL_LABEL]), lab.array, 0
    ).astype(np.uint8)
    ct_dir = folder / "ct"
    if case.ct is not None:
        ct = reorient(case.ct, orientation)
        ct = ct.with_array(np.round(ct.array).clip(-1024, 3071).astype(np.int16))
        written.append(str(write_image(ct, ct_dir / f"sub-{case_id}_ct.nii.gz")))
        written.append(str(write_image(lab.with_array(vert_only), ct_dir / f"sub-{case_id}_seg-vert_msk.nii.gz")))
        written.append(str(write_image(lab.with_array(spine_only), ct_dir / f"sub-{case_id}_seg-spine_msk.nii.gz")))
        ctd = ct_dir / f"sub-{case_id}_seg-vb_ctd.json"
        ctd.write_text(json.dumps(_ctd(lab), indent=1))
        written.append(str(ctd))
    for weighting, vol in (("t1", case.t1), ("t2", case.t2)):
        if vol is None:
            continue
        image, labels = case.mri_sagittal(weighting)
        image = image.with_array(np.round(image.array).clip(0, 65535).astype(np.uint16))
        written.append(str(write_image(image, folder / "mri" / "images" / f"{case_id}_{weighting}.mha")))
        spider = labels.with_array(to_spider(labels.array))
        written.append(str(write_image(spider, folder / "mri" / "masks" / f"{case_id}_{weighting}.mha")))
    for rad in (case.lateral, case.ap):
        if rad is None:
            continue
        stem = folder / "xray" / f"{case_id}_{rad.view}"
        written.append(str(write_png(rad.image, stem.with_suffix(".png"))))
        written.append(str(write_png(rad.labels, stem.parent / f"{stem.name}_label.png")))
        written.append(str(write_corners_csv(rad.corners, stem.with_suffix(".csv"))))
    truth = {
        "case_id": case_id,
        "world": "RAS+ millimetres; CT/MRI affines in the files map voxels to it",
        "grid": {"shape": list(case.grid.shape), "spacing_mm": list(case.grid.spacing), "origin_mm": list(case.grid.origin)},
        "ct_orientation": orientation.upper(),
        "xray": {
            r.view: {"pixel_mm": list(r.spacing), "shape": list(r.shape),
                     "corners_px": {k: v.round(3).tolist() for k, v in r.corners.items()}}
            for r in (case.lateral, case.ap) if r is not None
        },
        "centroids_mm": centroids(lab),
        **case.truth,
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1, default=_json_default))
    written.append(str(folder / "truth.json"))
    return written


def write_case(case: Case, out_dir: str | os.PathLike, case_id: str | None = None, orientation: str = "RAS") -> Path:
    """Write ``case`` to ``out_dir/<case_id>/`` (default id ``phantom<seed>``) atomically.

    Args:
        case: a rendered case.
        out_dir: the parent folder.
        case_id: the case's folder and file-name stem.
        orientation: axis order of the CT and its masks (:func:`lumbarlab.volume.reorient`), e.g. "LPS" or
            "PIR" as some VerSe scans are stored; voxels and world positions are the same in every order.

    Returns the case folder. An existing folder of the same id is replaced only once the new
    one is complete.
    """
    out_dir = Path(out_dir)
    parse_orientation(orientation)  # an invalid code fails here, before anything is written
    case_id = case_id or f"phantom{case.params.seed:04d}"
    if not case_id.replace("-", "").replace("_", "").isalnum():
        raise LumbarLabError(f"case id {case_id!r} may hold only letters, digits, '-' and '_'.")
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / case_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{case_id}.", dir=out_dir))
    try:
        _write_into(case, tmp, case_id, orientation)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{case_id}.old.", dir=out_dir))
            os.replace(final, old / case_id)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
