"""Phantom speed: one full case, and lateral radiographs for a training set. JSON out.

Budgets (issue #2, on a 2-core laptop CPU): one case (CT + T1 + T2 + AP + lateral + labels) at
1 mm on 160×160×200 in ≤ 0.5 s; 1,000 lateral radiographs of 256² with landmarks in ≤ 20 s.
Baselines measured in the same run: the same case with every noise value drawn afresh by
NumPy (``exact_noise=True``), and a lateral radiograph made the plain way — render the CT
volume and project it — instead of the fast chord-length generator.

    python benchmarks/bench_phantom.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from _report import emit


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and 200 radiographs")
    parser.add_argument("--out", help="write the JSON here as well as to stdout")
    args = parser.parse_args()

    start = time.perf_counter()
    from lumbarlab.phantom import make_case
    from lumbarlab.phantom.fast2d import lateral_radiographs
    import_s = time.perf_counter() - start

    repeats = 3 if args.quick else 7
    cold = _timed(lambda: make_case(0), 1)[0]  # includes the one-off noise bank
    case_s = _timed(lambda: make_case(1, slip={"L4": 30}), repeats)
    exact_s = _timed(lambda: make_case(1, slip={"L4": 30}, exact_noise=True), max(repeats // 2, 2))

    n = 200 if args.quick else 1000
    list(lateral_radiographs(5, seed=10_000))  # warm caches
    start = time.perf_counter()
    images = list(lateral_radiographs(n, seed=0, size=256))
    fast_total = time.perf_counter() - start
    assert all(r.image.shape == (256, 256) and len(r.corners) == 7 for r in images)
    plain = _timed(lambda: make_case(2, modalities=("xray",)), 3)

    case_median = statistics.median(case_s)
    per_image = fast_total / n
    result = {
        "benchmark": "phantom",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "import_seconds": round(import_s, 3),
        "full_case": {
            "grid": [160, 160, 200], "spacing_mm": 1.0,
            "median_seconds": round(case_median, 4), "all_seconds": [round(t, 4) for t in case_s],
            "first_case_seconds_including_noise_bank": round(cold, 4),
            "budget_seconds": 0.5, "within_budget": case_median <= 0.5,
            "baseline_exact_numpy_noise_median_seconds": round(statistics.median(exact_s), 4),
            "speedup_vs_exact_noise": round(statistics.median(exact_s) / case_median, 2),
        },
        "lateral_radiographs": {
            "count": n, "size": 256, "total_seconds": round(fast_total, 3),
            "per_image_ms": round(1000 * per_image, 2),
            "projected_seconds_per_1000": round(1000 * per_image, 2),
            "budget_seconds_per_1000": 20.0, "within_budget": 1000 * per_image <= 20.0,
            "baseline_render_volume_and_project_seconds_per_image": round(statistics.median(plain), 4),
            "speedup_vs_volume_projection": round(statistics.median(plain) / per_image, 1),
        },
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
