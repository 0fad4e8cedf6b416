"""Grade every disc of a user's sagittal lumbar T2 with the zoo: Pfirrmann I–V, herniation and central canal
stenosis (RSNA 2024's normal/mild, moderate, severe), each with its probabilities — what ``lumbarlab grade``
prints and writes.

The steps: :func:`lumbarlab.segment_mri.segment_stack` (checks that the input is a sagittal T2, finds and names
the discs with ``mri-spine``), then for each disc found its frame on the predicted mask
(:func:`lumbarlab.datasets.mri_discs.disc_frame`), a crop in that frame, and ``mri-discs``'s three heads.

Example:
    >>> from lumbarlab.datasets.mri_spine import phantom_mri_spine
    >>> stack = phantom_mri_spine(1, seed=900_500)[0].image
    >>> report = grade_mri_volume(stack)
    >>> list(report["discs"])[-2:], sorted(report["discs"]["L5-S1"])[:3]
    (['L4-L5', 'L5-S1'], ['centre_mm', 'herniation', 'herniation_probability'])
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume

__all__ = ["grade_stack", "grade_mri_volume", "grade_mri_file", "format_grades"]

_ROMAN = ("I", "II", "III", "IV", "V")


def grade_stack(seg, grader: str = "mri-discs", folder=None) -> dict:
    """Grade every disc of a segmented stack (:class:`lumbarlab.segment_mri.StackSegmentation`): for each disc the
    segmenter found, its frame on the predicted mask, the crop there, and ``grader``'s three heads.

    Returns:
        ``{"model": name, "discs": {disc: grades as in :func:`grade_mri_volume`}, "crops": (N, 3, H, W) array,
        "order": [disc names, crop order], "net": the grader}``.

    Raises:
        LumbarLabError: ``grader`` is not a disc grader, or no disc was found.
    """
    import torch

    from lumbarlab.datasets.mri_discs import STENOSIS_GRADES, disc_crop
    from lumbarlab.labels import DISC_LABEL
    from lumbarlab.measure.sagittal import disc_frame
    from lumbarlab.zoo import load, resolve
    from lumbarlab.zoo.tasks import split_heads

    recipe = resolve(grader)
    if recipe.task != "grading":
        raise LumbarLabError(f"{recipe.name} is a {recipe.task} model; lumbarlab grade needs a disc grader "
                             "(mri-discs).")
    found = [(disc, value) for disc, value in DISC_LABEL.items()
             if value in seg.values and (seg.classes == seg.class_of(value)).any()]
    if not found:
        raise LumbarLabError("no intervertebral disc was found in the image; nothing to grade.")
    crops, centres = [], []
    for _, value in found:
        slab, centre, along = disc_frame(seg.classes == seg.class_of(value))
        crops.append(disc_crop(seg.stack, slab, centre, along))
        centres.append(seg.grid.index_to_world(np.array([slab, centre[0], centre[1]], float)))
    net = load(recipe.name, folder)
    with torch.inference_mode():
        logits = net(torch.from_numpy(np.stack(crops)))
    probs = {k: torch.softmax(v, 1).numpy() for k, v in split_heads(logits).items()}
    discs = {}
    for i, (disc, _) in enumerate(found):
        pf, he, st = probs["pfirrmann"][i], probs["herniation"][i], probs["stenosis"][i]
        discs[disc] = {
            "pfirrmann": int(np.argmax(pf)) + 1,
            "pfirrmann_probabilities": {r: round(float(p), 4) for r, p in zip(_ROMAN, pf, strict=True)},
            "herniation": bool(he[1] >= 0.5),
            "herniation_probability": round(float(he[1]), 4),
            "stenosis": STENOSIS_GRADES[int(np.argmax(st))],
            "stenosis_probabilities": {g: round(float(p), 4) for g, p in zip(STENOSIS_GRADES, st, strict=True)},
            "centre_mm": [round(float(v), 2) for v in centres[i]],
        }
    return {"model": recipe.name, "discs": discs, "crops": np.stack(crops), "order": [d for d, _ in found], "net": net}


def grade_mri_volume(mri: Volume, segmenter: str = "mri-spine", grader: str = "mri-discs", device=None,
                     folder=None) -> dict:
    """Per-disc grades of a sagittal T2 ``mri`` (any orientation and pixel size) as a JSON-ready report.

    Args:
        mri: the sagittal stack.
        segmenter, grader: zoo models (an MRI segmenter, a disc grader).
        device: where to run the networks.
        folder: a zoo folder other than the shipped weights.

    Returns:
        ``{"discs": {"L4-L5": {"pfirrmann": 4, "pfirrmann_probabilities": {"I": …}, "herniation": bool,
        "herniation_probability": p, "stenosis": "moderate", "stenosis_probabilities": {…}, "centre_mm": [x, y, z]},
        …}, "models": […], "t2_contrast": {…}, "seconds": s}``; discs from head to feet.

    Raises:
        LumbarLabError: the input is not a sagittal T2 the models can read, or no disc was found.
    """
    import time

    from lumbarlab.labels import DISC_LABEL
    from lumbarlab.segment_mri import segment_stack

    started = time.perf_counter()
    seg = segment_stack(mri, segmenter, device=device, folder=folder)
    graded = grade_stack(seg, grader, folder=folder)
    discs = graded["discs"]
    return {"models": [seg.model, graded["model"]], "input_shape": list(mri.shape),
            "input_spacing_mm": [round(s, 4) for s in mri.spacing], "discs": discs,
            "discs_missing": [d for d in DISC_LABEL if d not in discs], "t2_contrast": seg.contrast,
            "units": {"centre_mm": "world mm, RAS+", "probabilities": "softmax of the grader's heads"},
            "seconds": round(time.perf_counter() - started, 2)}


def grade_mri_file(input_path: str | os.PathLike, report_path: str | os.PathLike | None = None, device=None,
                   folder=None) -> dict:
    """Read a sagittal T2 (SPIDER ``.mha``, NIfTI, NRRD or a DICOM series folder), grade it with
    :func:`grade_mri_volume`, and write the report as JSON when ``report_path`` is given (a temporary file renamed
    into place: a failure leaves no file and an older report untouched)."""
    from lumbarlab.io import atomic_path, read_image

    if report_path is not None and Path(report_path).is_dir():
        raise LumbarLabError(f"{report_path} is a folder; --report takes a file name such as grades.json.")
    report = grade_mri_volume(read_image(input_path), device=device, folder=folder)
    report["input"] = str(input_path)
    if report_path is not None:
        with atomic_path(Path(report_path)) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_grades(report: dict) -> str:
    """The report as a table, one disc per line.

    Example:
        >>> print(format_grades({"discs": {"L4-L5": {"pfirrmann": 4, "pfirrmann_probabilities": {"IV": 0.81},
        ...     "herniation": True, "herniation_probability": 0.93, "stenosis": "moderate",
        ...     "stenosis_probabilities": {"moderate": 0.6}}}}))
        disc    Pfirrmann      herniation   stenosis
        L4-L5   IV (0.81)      yes (0.93)   moderate (0.60)
    """
    lines = [f"{'disc':<8}{'Pfirrmann':<15}{'herniation':<13}stenosis"]
    for disc, g in report["discs"].items():
        roman = _ROMAN[g["pfirrmann"] - 1]
        pf = f"{roman} ({g['pfirrmann_probabilities'][roman]:.2f})"
        he = f"{'yes' if g['herniation'] else 'no'} ({g['herniation_probability']:.2f})"
        st = f"{g['stenosis']} ({g['stenosis_probabilities'][g['stenosis']]:.2f})"
        lines.append(f"{disc:<8}{pf:<15}{he:<13}{st}")
    return "\n".join(lines)
