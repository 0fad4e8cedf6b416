"""Panel responsiveness: control change → redrawn panel in the kernel, and dashboard page → interactive in
Chromium. JSON out.

Goals (issue #14): a 2D panel redraws in ≤ 300 ms p95 after a control change; every dashboard is interactive
≤ 6 s after its page is requested, cold (Voilà starts a fresh kernel for each page request: imports, zoo
models and the first analysis all count).

In the kernel (``panels``), for each panel a sequence of user moves through :meth:`Panel.set`, each timed
from the change to the last picture written:

* ``xray``: the X-ray dashboard's panel (three zoo models) — case changes (slip, level, fracture; the AP view
  is redrawn only when its spine changes) and Grad-CAM opacity;
* ``why``: the Grad-CAM panel on the zoo classifier — case changes and opacity;
* ``jitter``: lesson 02's landmark-error panel;
* ``phantom``: lesson 00's phantom explorer, a 3D re-render (reported, no 2D goal).

Baseline in the same run: the model work alone with plain PyTorch on the same image (the three models'
forward passes and one Grad-CAM backward for ``xray``, forward + Grad-CAM for ``why``) — what any panel
must spend; ``over_models`` is the panel's p95 over it.

In the browser (``dashboards``): each dashboard's server is started (``lumbarlab dashboards NAME``), then
the page is requested several times, each in a fresh Chromium context (so each gets a new kernel); page
request → the ready element visible is timed. For ``xray`` also one slip change typed into the page → the
new grade shown (``browser_redraw_s``). Floors in the same run (``floors``), served by Voilà the same way: a
notebook that shows one HTML widget (Voilà + kernel + Chromium alone), and one that first imports torch,
MONAI and lumbarlab (what any dashboard running a MONAI model pays before its first picture).

    python benchmarks/bench_panels.py [--quick] [--no-browser] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import emit

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = {"xray": ".ll-xr-grade", "why": ".ll-cam-prediction", "metric_explorer": '.ll-metric[data-metric="f1"]'}
GOAL_REDRAW_P95_MS = 300.0
GOAL_PAGE_S = 6.0


def _stats(seconds: list[float]) -> dict:
    ms = 1000 * np.asarray(seconds)
    return {"n": int(ms.size), "ms_p50": round(float(np.median(ms)), 1), "ms_p95": round(float(np.percentile(ms, 95)), 1),
            "ms_max": round(float(ms.max()), 1)}


def _time_moves(panel, moves: list[dict]) -> list[float]:
    """Seconds of each move after one untimed warm-up move (lazy imports on a panel's first use)."""
    panel.set(**moves[-1])
    out = []
    for move in moves:
        start = time.perf_counter()
        panel.set(**move)
        out.append(time.perf_counter() - start)
        if panel.message.value:
            raise RuntimeError(f"{type(panel).__name__} refused {move}: {panel.message.value}")
    return out


def _models_floor(models: list, image: np.ndarray, cam_model, repeats: int) -> float:
    """Seconds of the model work alone (forward of each model, one Grad-CAM backward), median of ``repeats``."""
    import torch

    from lumbarlab.explain import class_activation_map

    x = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None, None]
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.inference_mode():
            for m in models:
                m(x)
        class_activation_map(cam_model, x, target=1)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def bench_kernel(quick: bool) -> dict:
    from lumbarlab.widgets import CAMPanel, LandmarkJitterPanel, PhantomExplorer, XrayPanel
    from lumbarlab.widgets.measurement import grade_flip_curve

    n = 10 if quick else 30
    rng = np.random.default_rng(0)
    out: dict = {}

    start = time.perf_counter()
    xray = XrayPanel(seed=3, slip=30.0, level="L4")
    first = time.perf_counter() - start
    case_moves = []
    for i in range(n):
        move = {"slip": float(rng.integers(0, 60))}
        if i % 3 == 1:
            move["level"] = ["L3", "L4", "L5"][i % 3]
        if i % 4 == 2:
            move["fracture"] = float(rng.integers(0, 40))
        case_moves.append(move)
    case = _time_moves(xray, case_moves)
    alpha = _time_moves(xray, [{"alpha": round(float(a), 2)} for a in rng.uniform(0.1, 0.9, n)])
    floor = _models_floor(list(xray.models.values()), xray.image, xray.models["xray-slip"], 3 if quick else 10)
    case_stats = _stats(case)
    out["xray"] = {"construct_s": round(first, 2), "case_change": case_stats, "opacity": _stats(alpha),
                   "models_alone_ms": round(1000 * floor, 1),
                   "over_models": round(case_stats["ms_p95"] / (1000 * floor), 2)}

    why = CAMPanel(seed=3, slip=30.0)
    case = _time_moves(why, [{"slip": float(rng.integers(0, 60))} for _ in range(n)])
    alpha = _time_moves(why, [{"alpha": round(float(a), 2)} for a in rng.uniform(0.1, 0.9, n)])
    floor = _models_floor([why.model], why.image, why.model, 3 if quick else 10)
    case_stats = _stats(case)
    out["why"] = {"case_change": case_stats, "opacity": _stats(alpha), "models_alone_ms": round(1000 * floor, 1),
                  "over_models": round(case_stats["ms_p95"] / (1000 * floor), 2)}

    jitter = LandmarkJitterPanel(seed=1, curve=grade_flip_curve(n_cases=40))
    moves = [{"sd": float(s)} for s in rng.choice(np.arange(0.25, 4.01, 0.25), n)]
    out["jitter"] = {"sd_change": _stats(_time_moves(jitter, moves))}

    phantom = PhantomExplorer(seed=3, shape=(64, 64, 96), spacing=2.5)
    moves = [{"slip_percent": float(rng.integers(0, 60))} for _ in range(max(3, n // 3))]
    out["phantom_3d"] = {"slip_change": _stats(_time_moves(phantom, moves)), "grid": [64, 64, 96], "goal": "none (3D)"}

    p95s = [out["xray"]["case_change"]["ms_p95"], out["xray"]["opacity"]["ms_p95"], out["why"]["case_change"]["ms_p95"],
            out["why"]["opacity"]["ms_p95"], out["jitter"]["sd_change"]["ms_p95"]]
    out["worst_2d_ms_p95"] = max(p95s)
    out["within_goal"] = max(p95s) <= GOAL_REDRAW_P95_MS
    return out


FLOORS = {
    "one_widget": "import ipywidgets as w\nw.HTML('<b class=\"ready\">ok</b>')",
    "imports_torch_monai_lumbarlab": "import lumbarlab, torch, monai\nimport ipywidgets as w\n"
                                     "w.HTML('<b class=\"ready\">ok</b>')",
}


def _page_times(browser, port: int, ready: str, loads: int, xray_redraw: bool = False) -> tuple[list[float], float | None]:
    pages, redraw = [], None
    for i in range(loads):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(240_000)
        start = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
        page.wait_for_selector(ready, state="visible")
        pages.append(time.perf_counter() - start)
        if xray_redraw and i == 0:
            box = page.locator(".ll-xr-slip input").first
            box.fill("10")
            start = time.perf_counter()
            box.press("Enter")
            page.wait_for_function("() => document.querySelector('.ll-xr-grade')?.textContent.trim() === '1'")
            redraw = time.perf_counter() - start
        context.close()
    return pages, redraw


def _floor_server(folder: Path, name: str, port: int, env: dict, log: Path):
    import nbformat
    from harness import start_server

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(FLOORS[name])]
    nbformat.write(nb, folder / f"{name}.ipynb")
    proc, _ = start_server([sys.executable, "-m", "voila", str(folder / f"{name}.ipynb"), f"--port={port}",
                            "--no-browser"], env, log, cwd=folder)
    return proc


def bench_browser(loads: int) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from harness import CHROMIUM, CHROMIUM_ARGS, free_port, jupyter_env, start_voila, stop_process_tree
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        tmp = Path(tmp)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for name, ready in DASHBOARDS.items():
            port = free_port()
            proc, started = start_voila(name, port, jupyter_env(tmp / name), tmp / f"{name}.log")
            server_s = time.perf_counter() - started
            try:
                pages, redraw = _page_times(browser, port, ready, loads, xray_redraw=name == "xray")
            finally:
                survivors = stop_process_tree(proc)
            out[name] = {"server_start_s": round(server_s, 2), "page_to_interactive_s": [round(s, 2) for s in pages],
                         "cold_s": round(pages[0], 2), "worst_s": round(max(pages), 2), "stray_processes": len(survivors)}
            if redraw is not None:
                out[name]["browser_redraw_s"] = round(redraw, 3)
        floors = {}
        for name in FLOORS:
            port = free_port()
            proc = _floor_server(tmp / name, name, port, jupyter_env(tmp / name), tmp / f"{name}.log")
            try:
                pages, _ = _page_times(browser, port, ".ready", loads)
            finally:
                stop_process_tree(proc)
            floors[name] = {"page_to_interactive_s": [round(s, 2) for s in pages], "median_s": round(float(np.median(pages)), 2)}
        browser.close()
    out["worst_s"] = max(v["worst_s"] for v in out.values())
    out["within_goal"] = out["worst_s"] <= GOAL_PAGE_S
    out["floors"] = floors
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer moves and page loads (about two minutes)")
    parser.add_argument("--no-browser", action="store_true", help="kernel timings only (no Chromium here)")
    parser.add_argument("--out", help="write the JSON here as well as to stdout")
    args = parser.parse_args()

    import torch

    result = {
        "benchmark": "panels",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform()},
        "goals": {"redraw_2d_ms_p95": GOAL_REDRAW_P95_MS, "page_to_interactive_s": GOAL_PAGE_S},
        "panels": bench_kernel(args.quick),
    }
    if not args.no_browser:
        result["dashboards"] = bench_browser(2 if args.quick else 4)
    emit(result, args.out)


if __name__ == "__main__":
    main()
