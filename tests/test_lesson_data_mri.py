"""Lesson 12's DATA path, end to end: phantom studies written in SPIDER's layout, converted by
`lumbarlab fetch spider --from`, and scored by the lesson with the same code as the phantom."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.notebook
def test_lesson_12_scores_mri_spine_on_a_converted_spider_copy(tmp_path):
    import papermill as pm

    from lumbarlab.fetch import fetch
    from lumbarlab.phantom import make_case
    from lumbarlab.phantom.export import write_case

    source = tmp_path / "spider_download"
    for seed in (900_600, 900_601):  # test-split anatomies, 1 mm in-plane as a scanner gives
        write_case(make_case(seed, shape=(120, 200, 220), spacing=1.0, modalities=("t2",)), source)
    folder = fetch("spider", tmp_path / "data", from_path=source, progress=False)
    out = tmp_path / "12.ipynb"
    notebook = REPO / "notebooks" / "12_mri_segmentation.ipynb"
    pm.execute_notebook(str(notebook), str(out), parameters={"FAST": True, "DATA": str(folder)},
                        cwd=str(notebook.parent), execution_timeout=300, progress_bar=False, kernel_name="python3")
    cells = json.loads(out.read_text())["cells"]
    printed = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert f"data={folder}" in printed
    line = next(s for s in printed.splitlines() if s.startswith("phantom → real:"))
    scores = [float(v) for v in re.findall(r"→ ([0-9.]+)", line)]
    # the same phantom, converted: the model reads SPIDER's values mapped back, so the scores stay high
    assert len(scores) == 3 and min(scores) > 0.85, line
    assert sum(s.startswith("phantom90060") for s in printed.splitlines()) == 2


@pytest.mark.slow
@pytest.mark.notebook
def test_lesson_13_grades_a_converted_rsna_copy(tmp_path):
    """Two phantom studies written as RSNA 2024 ships them (a DICOM folder per series, train.csv with the readers'
    grades, the series descriptions), converted by `lumbarlab fetch rsna2024 --from`, graded by lesson 13."""
    import papermill as pm

    from lumbarlab.datasets.mri_discs import stenosis_grade
    from lumbarlab.dicom import write_dicom_series
    from lumbarlab.fetch import fetch
    from lumbarlab.measure.sagittal import sagittal_disc_measurements
    from lumbarlab.phantom import make_case
    from lumbarlab.volume import reorient

    names = ("Normal/Mild", "Moderate", "Severe")
    source = tmp_path / "rsna"
    rows, descriptions = [], []
    for study, (seed, canal) in enumerate(((900_610, 16.0), (900_611, 11.0)), start=4001):
        case = make_case(seed, shape=(96, 176, 192), spacing=1.25, modalities=("t2",), stenosis=canal)
        image, labels = case.mri_sagittal("T2", 4.0)
        write_dicom_series(reorient(image, "PIL"), source / "train_images" / str(study) / "77", modality="MR",
                           description="Sagittal T2/STIR")
        grades = {d: stenosis_grade(m["canal_ap_mm"]) for d, m in sagittal_disc_measurements(labels).items()}
        rows.append(f"{study}," + ",".join(names[grades[d]] for d in ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")))
        descriptions.append(f"{study},77,Sagittal T2/STIR")
    levels = ("l1_l2", "l2_l3", "l3_l4", "l4_l5", "l5_s1")
    (source / "train.csv").write_text("study_id," + ",".join(f"spinal_canal_stenosis_{v}" for v in levels) + "\n"
                                      + "\n".join(rows) + "\n")
    (source / "train_series_descriptions.csv").write_text("study_id,series_id,series_description\n"
                                                          + "\n".join(descriptions) + "\n")
    (source / "train_label_coordinates.csv").write_text("study_id,series_id,instance_number,condition,level,x,y\n")
    folder = fetch("rsna2024", tmp_path / "data", from_path=source, progress=False)
    out = tmp_path / "13.ipynb"
    notebook = REPO / "notebooks" / "13_mri_disc_grading.ipynb"
    pm.execute_notebook(str(notebook), str(out), parameters={"FAST": True, "DATA": str(folder)},
                        cwd=str(notebook.parent), execution_timeout=300, progress_bar=False, kernel_name="python3")
    printed = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []))
    line = next(s for s in printed.splitlines() if s.startswith("RSNA:"))
    assert line.startswith("RSNA: 10 graded levels"), line   # 2 studies × L1/L2 … L5/S1
    kappa = float(re.search(r"κw (-?[0-9.]+)", line).group(1))
    assert kappa > 0.5, line  # the same phantom, graded by the measured canal: the grader mostly agrees
