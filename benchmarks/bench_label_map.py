"""Vertebral heights from 3D label maps: accuracy against the phantom's truth and seconds per vertebra, in
every geometry real files come in. JSON out.

Cases: phantom spines (lordosis 45° and 60°, a biconcave or wedge fracture in some) stored as
  * ``1mm-RAS`` / ``1mm-PIR``: rendered at 1 mm, stored in two axis orders;
  * ``thick-PIR``: rendered at 0.7 × 0.7 × 2.5 mm (each voxel takes the label at its centre), stored PIR;
  * ``thick-oblique``: rendered at 0.5 mm, resampled (nearest neighbour) onto a grid of 0.7 × 0.7 × 2.5 mm
    turned by a few degrees about each axis, stored LPS.
Whole-vertebra labels throughout. For each measured height: |measured − truth| in mm, split for the thick
grids by how the vertebra lies against the slices (its axis within 5° of the slice normal: endplates along
the slices, which the voxels only place within about half a slice; more: endplates crossing them), and
whether the height stayed within the bound the measurement reports (``height_uncertainty_mm``).

Baseline in the same run: the method lumbarlab used before (one array slice through the centroid after
reorienting to RAS, its largest piece, corners from the 2D mask), on the same label maps.

    python benchmarks/bench_label_map.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from _report import emit

LEVELS = {"T12": 19, "L1": 20, "L2": 21, "L3": 22, "L4": 23, "L5": 24}


def _baseline_heights(labels, level: str) -> dict[str, float] | None:
    """The previous method: the RAS array's sagittal slice through the centroid, largest piece, 2D corners."""
    from scipy import ndimage

    from lumbarlab.measure.core import vertebral_heights
    from lumbarlab.measure.landmarks import corners_from_mask
    from lumbarlab.volume import to_canonical

    try:
        lab = to_canonical(labels)
        mask = lab.array == LEVELS[level]
        i = int(round(np.nonzero(mask)[0].mean()))
        plane = mask[i].T[::-1, ::-1]
        parts, n = ndimage.label(plane)
        if n > 1:
            sizes = ndimage.sum(plane, parts, range(1, n + 1))
            plane = parts == int(np.argmax(sizes)) + 1
        return vertebral_heights(corners_from_mask(plane, "left", level), (lab.spacing[2], lab.spacing[1]), level)
    except Exception:  # the baseline fails outright on some inputs: counted as missing
        return None


def _cases(quick: bool):
    from lumbarlab.phantom import make_case
    from lumbarlab.phantom.acquisition import acquire
    from lumbarlab.volume import reorient

    seeds = range(3) if quick else range(8)
    for seed in seeds:
        lordosis = (45.0, 60.0)[seed % 2]
        fracture = [{}, {"fracture": {"L2": 35.0}, "fracture_type": "biconcave"},
                    {"fracture": {"L3": 40.0}, "fracture_type": "wedge"}][seed % 3]
        iso = make_case(seed, modalities=(), lordosis=lordosis, **fracture)
        yield "1mm-RAS", iso, iso.labels
        yield "1mm-PIR", iso, reorient(iso.labels, "PIR")
        thick = make_case(seed, modalities=(), lordosis=lordosis, spacing=(0.7, 0.7, 2.5), shape=(229, 229, 80),
                          **fracture)
        yield "thick-PIR", thick, reorient(thick.labels, "PIR")
        if not quick or seed == 0:
            fine = make_case(seed, modalities=(), lordosis=lordosis, spacing=0.5, shape=(300, 280, 520), **fracture)
            rotation = tuple(float(a) for a in np.random.default_rng(seed).uniform(-15, 15, 3))
            yield "thick-oblique", fine, acquire(fine.labels, (0.7, 0.7, 2.5), rotation, "LPS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 spines, one oblique grid")
    parser.add_argument("--out", help="write the JSON here as well as to stdout")
    args = parser.parse_args()

    from lumbarlab.measure import measure_label_map

    rows, seconds, n_vertebrae = [], 0.0, 0
    for geometry, case, labels in _cases(args.quick):
        start = time.perf_counter()
        report = measure_label_map(labels)
        seconds += time.perf_counter() - start
        for level, entry in report.vertebrae.items():
            n_vertebrae += 1
            if "anterior_height_mm" not in entry:
                continue
            v = case.spine.vertebrae[level]
            truth = {"anterior": v.ha, "middle": v.hm, "posterior": v.hp}
            base = _baseline_heights(labels, level)
            thick_axis = int(np.argmax(labels.spacing))
            tilt = float(np.degrees(np.arccos(min(1.0, abs(float(v.rotation[:, 2] @ labels.direction[:, thick_axis]))))))
            for kind in truth:
                rows.append({
                    "geometry": geometry, "level": level, "height": kind,
                    "fractured": level in case.params.fracture,
                    "error": entry[f"{kind}_height_mm"] - truth[kind],
                    "uncertainty": entry["height_uncertainty_mm"],
                    "tilt_to_slices": tilt,
                    "baseline_error": None if base is None else base[kind] - truth[kind],
                })

    def summary(sel: list[dict], key: str = "error") -> dict:
        errs = np.array([abs(r[key]) for r in sel if r[key] is not None])
        missing = sum(r[key] is None for r in sel)
        if not len(errs):
            return {"n": 0, "missing": missing}
        return {"n": int(len(errs)), "missing": int(missing), "mae_mm": round(float(errs.mean()), 3),
                "p95_mm": round(float(np.percentile(errs, 95)), 3), "max_mm": round(float(errs.max()), 3),
                "within_1.5mm": round(float(np.mean(errs <= 1.5)), 3)}

    by_geometry = {}
    for geometry in dict.fromkeys(r["geometry"] for r in rows):
        sel = [r for r in rows if r["geometry"] == geometry]
        by_geometry[geometry] = {
            "lumbarlab": summary(sel),
            "endplates crossing the slices (> 5 deg)": summary([r for r in sel if r["tilt_to_slices"] > 5.0]),
            "endplates along the slices (<= 5 deg)": summary([r for r in sel if r["tilt_to_slices"] <= 5.0]),
            "within the reported bound": round(float(np.mean([abs(r["error"]) <= r["uncertainty"] for r in sel])), 3),
            "median reported bound (mm)": round(float(np.median([r["uncertainty"] for r in sel])), 2),
            "unfractured": summary([r for r in sel if not r["fractured"]]),
            "baseline (array slice)": summary(sel, "baseline_error"),
        }
    emit({
        "benchmark": "vertebral heights from 3D label maps vs phantom truth",
        "machine": platform.processor() or platform.machine(),
        "quick": args.quick,
        "seconds_per_vertebra": round(seconds / max(n_vertebrae, 1), 3),
        "results": by_geometry,
    }, args.out)


if __name__ == "__main__":
    main()
