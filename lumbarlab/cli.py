"""The ``lumbarlab`` command: info, lab, dashboards, curriculum, measure, phantom.

Every user error prints one line starting with ``lumbarlab: error:`` and exits with
status 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from lumbarlab.errors import LumbarLabError

__all__ = ["main", "build_parser"]


def _cmd_info(args: argparse.Namespace) -> int:
    from importlib import metadata

    from lumbarlab import __version__
    from lumbarlab.device import device_summary
    from lumbarlab.paths import cache_dir, data_dir, repo_root

    versions = {"python": platform.python_version(), "lumbarlab": __version__}
    for pkg in ("torch", "monai", "numpy", "scipy", "nibabel", "SimpleITK", "pydicom", "ipywidgets",
                "jupyterlab", "voila", "papermill", "ipyniivue"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    info = {
        "versions": versions,
        **device_summary(),
        "device_env": os.environ.get("LUMBARLAB_DEVICE", ""),
        "data_dir": str(data_dir()),
        "cache_dir": str(cache_dir()),
        "repo": str(repo_root() or ""),
    }
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            if key == "versions":
                print("versions:")
                for pkg, ver in value.items():
                    print(f"  {pkg:<12} {ver}")
            else:
                print(f"{key:<{width}}  {value}")
    return 0


def _cmd_lab(args: argparse.Namespace) -> int:
    from lumbarlab.paths import repo_root

    root = repo_root()
    if root is None:
        raise LumbarLabError("the lab needs a lumbarlab source checkout (its notebooks/ folder); clone the repository.")
    cmd = [
        sys.executable, "-m", "jupyter", "lab", f"--ServerApp.ip={args.ip}", f"--ServerApp.port={args.port}",
        f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0" if args.port else "--ServerApp.port_retries=50",
        "notebooks/00_start_here.ipynb",
    ]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root
    return _become(cmd, root)


def dashboard_command(name: str | None, port: int, ip: str = "127.0.0.1", open_browser: bool = False) -> list[str]:
    """The Voilà command line that serves ``apps/`` (or one app) for ``lumbarlab dashboards``.

    Sources are stripped and tracebacks never reach the page; the server listens on ``ip`` only.
    """
    from lumbarlab.paths import repo_root

    root = repo_root()
    if root is None:
        raise LumbarLabError("dashboards need a lumbarlab source checkout (its apps/ folder); clone the repository.")
    apps = root / "apps"
    available = sorted(p.stem for p in apps.glob("*.ipynb"))
    if name is not None and name.removesuffix(".ipynb") not in available:
        raise LumbarLabError(f"no dashboard {name!r}; available: {', '.join(available)}.")
    target = str(apps / f"{name.removesuffix('.ipynb')}.ipynb") if name else str(apps)
    cmd = [sys.executable, "-m", "voila", target, f"--port={port}", f"--Voila.ip={ip}",
           "--strip_sources=True", "--show_tracebacks=False", "--VoilaConfiguration.file_allowlist=[]"]
    if not open_browser:
        cmd.append("--no-browser")
    return cmd


def _cmd_dashboards(args: argparse.Namespace) -> int:
    cmd = dashboard_command(args.name, args.port, args.ip, open_browser=not args.no_browser)
    from lumbarlab.paths import repo_root

    return _become(cmd, repo_root() / "apps")


def _become(cmd: list[str], cwd: Path) -> int:
    """Replace this process with ``cmd`` (in ``cwd``): Ctrl-C and SIGTERM then reach the server itself, which stops
    its kernels — a wrapper that died alone would leave the server and its kernels running. Where exec is not
    available the command runs as a child whose end we wait for."""
    os.chdir(cwd)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(cmd[0], cmd)
    return subprocess.call(cmd)


def _cmd_curriculum(args: argparse.Namespace) -> int:
    from lumbarlab.curriculum import find_notebooks, format_table, run_curriculum

    notebooks = [Path(n) for n in args.notebooks] if args.notebooks else find_notebooks()
    missing = [str(n) for n in notebooks if not n.exists()]
    if missing:
        raise LumbarLabError(f"no such notebook(s): {', '.join(missing)}")
    runs = run_curriculum(notebooks, args.out, full=args.full, timeout=args.timeout, html=not args.no_html)
    print(format_table(runs))
    print(f"executed notebooks and HTML in {Path(args.out).resolve()}")
    return 0 if all(r.status == "ok" for r in runs) else 1


def _cmd_phantom(args: argparse.Namespace) -> int:
    from lumbarlab.phantom import make_case, sample_params
    from lumbarlab.phantom.export import write_case
    from lumbarlab.phantom.params import parse_level_value

    pathology: dict = {}
    if args.slip:
        pathology["slip"] = dict(parse_level_value(s) for s in args.slip)
    if args.fracture:
        pathology["fracture"] = dict(parse_level_value(s) for s in args.fracture)
        pathology["fracture_type"] = args.fracture_type
    if args.pfirrmann:
        grades = {}
        for text in args.pfirrmann:
            disc, grade = parse_level_value(text, kind="disc")
            if grade != int(grade):
                raise LumbarLabError(f"Pfirrmann grades are whole numbers 1–5, got {grade:g} in {text!r}.")
            grades[disc] = int(grade)
        pathology["pfirrmann"] = grades
    if args.herniation:
        pathology["herniation"] = dict(parse_level_value(s, kind="disc") for s in args.herniation)
    for key in ("cobb", "bmd", "stenosis", "lordosis"):
        if getattr(args, key) is not None:
            pathology[key] = getattr(args, key)
    pathology["realism"] = args.realism
    if args.domain_randomise:
        pathology["domain_randomise"] = True
    if args.n < 1:
        raise LumbarLabError(f"--n must be at least 1, got {args.n}.")
    if args.seed < 0:
        raise LumbarLabError(f"--seed must be >= 0, got {args.seed}.")
    if any(s <= 0 for s in args.spacing):
        raise LumbarLabError(f"--spacing must be positive millimetres, got {args.spacing}.")
    spacing = args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing)
    # Validate once before rendering anything, so a bad parameter writes nothing.
    sample_params(args.seed, **pathology)
    for i in range(args.n):
        case = make_case(sample_params(args.seed + i, **pathology), shape=tuple(args.shape), spacing=spacing)
        folder = write_case(case, args.out, orientation=args.orientation)
        t = case.truth
        slips = {k: round(v["slip_percent"], 1) for k, v in t["slip"].items() if abs(v["slip_percent"]) >= 0.5}
        print(f"{folder}  slip={slips or 0}  cobb={t['cobb']['angle_deg']:.1f}  lordosis={t['lordosis_L1_S1_deg']:.1f}")
    return 0


def _cmd_measure(args: argparse.Namespace) -> int:
    from lumbarlab.measure import measure_ap, measure_label_map, measure_lateral, read_corners_csv

    if bool(args.corners) == bool(args.mask):
        raise LumbarLabError("give either --corners FILE.csv (with --view) or --mask FILE.nii.gz.")
    if args.corners:
        if args.spacing is not None and (len(args.spacing) not in (1, 2) or any(s <= 0 for s in args.spacing)):
            raise LumbarLabError("--spacing takes one or two positive pixel sizes in mm (row, column).")
        sp, source = None, "none: lengths are in pixels"
        if args.spacing is not None:
            sp, source = tuple((args.spacing * 2)[:2]), "--spacing"
        elif args.image:
            from lumbarlab.io import pixel_spacing, read_image

            image = read_image(args.image)
            sp = pixel_spacing(image)
            source = image.meta.get("spacing_source", "the image") if sp else f"{args.image} states no pixel spacing"
        corners = read_corners_csv(args.corners)
        report = measure_lateral(corners, sp) if args.view == "lateral" else measure_ap(corners, sp)
        out = {"file": str(args.corners), "view": args.view, "spacing_mm": list(sp) if sp else None,
               "spacing_source": source, "units": {"lengths": "mm" if sp else "pixels", "angles": "degrees"},
               **report.to_dict()}
    else:
        from lumbarlab.io import read_image

        labels = read_image(args.mask)
        ct = read_image(args.ct) if args.ct else None
        out = {"file": str(args.mask), "units": {"lengths": "mm", "density": "HU", "points": "world mm, RAS+"},
               **measure_label_map(labels, ct, convention=args.labels).to_dict()}
    print(json.dumps(out, indent=1))
    return 0


def _cmd_segment(args: argparse.Namespace) -> int:
    from lumbarlab.zoo import resolve

    if resolve(args.model).modality in ("t1", "t2"):
        from lumbarlab.segment_mri import segment_mri_file

        result = segment_mri_file(args.input, args.out, model=args.model, report_path=args.report,
                                  device=args.device, convention=args.labels)
        rep = result.report
        print(f"{args.out}: {', '.join(rep['structures_found']) or 'nothing found'} in {rep['label_convention']} "
              f"values ({rep['seconds']} s)" + (f"; report: {args.report}" if args.report else ""))
        return 0
    if args.labels == "spider":
        raise LumbarLabError("--labels spider is for MRI models (SPIDER is an MRI dataset); a CT model writes VerSe "
                             "values.")
    from lumbarlab.segment import segment_file

    result = segment_file(args.input, args.out, model=args.model, report_path=args.report, device=args.device,
                          progress=not args.quiet)
    rep = result.report
    print(f"{args.out}: {', '.join(rep['levels_found']) or 'no vertebra found'} "
          f"({rep['seconds']} s{', truncated by the field of view' if rep['truncated'] else ''})"
          + (f"; report: {args.report}" if args.report else ""))
    for level, v in rep.get("vertebrae", {}).items():
        if "genant_grade" in v or "trabecular_hu" in v:
            hu = f", {v['trabecular_hu']:.0f} HU ({v['bone_density']})" if "trabecular_hu" in v else ""
            grade = f"Genant {v['genant_grade']} (height loss {v['height_loss_percent']:.0f} %)" if "genant_grade" in v else ""
            print(f"  {level}: {grade}{hu}")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    from lumbarlab.grade_mri import format_grades, grade_mri_file

    report = grade_mri_file(args.input, args.report, device=args.device)
    print(format_grades(report))
    missing = f"; not in view: {', '.join(report['discs_missing'])}" if report["discs_missing"] else ""
    print(f"({report['seconds']} s{missing}" + (f"; report: {args.report})" if args.report else ")"))
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from lumbarlab.fetch import ManualStepRequired, fetch, format_table, get

    if args.list or not args.name:
        print(format_table())
        return 0
    try:
        folder = fetch(args.name, args.dest, mirror=args.mirror, from_path=args.from_path, progress=not args.quiet)
    except ManualStepRequired as exc:
        print(str(exc))
        return 1
    import json as _json

    cases = _json.loads((folder / "index.json").read_text())["cases"]
    ds = get(args.name)
    print(f"{ds.name}: {len(cases)} cases in {folder} (license: {ds.license}; cite: {ds.citation})")
    return 0


def _cmd_zoo(args: argparse.Namespace) -> int:
    from lumbarlab import zoo

    folder = Path(args.folder) if args.folder else None
    if args.action == "list":
        found = zoo.entries(folder)
        print(f"{'name':16} {'task':15} {'floor':18} {'test metrics':58} {'size':>8}")
        for name, recipe in zoo.RECIPES.items():
            metric, op, value = recipe.floor
            entry = found.get(name)
            shown = ", ".join(f"{k}={v:.4g}" for k, v in entry.metrics.items()) if entry else "not trained"
            size = f"{entry.bytes / 2**20:.2f} MB" if entry else "-"
            print(f"{name:16} {recipe.task:15} {f'{metric} {op} {value}':18} {shown:58} {size:>8}")
        return 0
    if args.action == "verify":
        names = [zoo.resolve(args.name).name] if args.name else list(zoo.RECIPES)
        results = [zoo.verify(n, folder) for n in names]
        for r in results:
            print(r)
        return 0 if all(r.ok for r in results) else 1
    if not args.name:
        raise LumbarLabError("zoo train needs a model name or task, e.g. `lumbarlab zoo train xray-slip`.")
    out = zoo.weights_dir() if args.install else (Path(args.out) if args.out else None)
    entry = zoo.train(args.name, out)
    shipped = zoo.entries().get(entry.name)
    print(json.dumps({"name": entry.name, "file": entry.file, "sha256": entry.sha256, "metrics": entry.metrics,
                      "train_seconds": entry.provenance["train_seconds"]}, indent=1))
    if shipped is not None and not args.install:
        same = "identical to" if shipped.sha256 == entry.sha256 else "differs from"
        print(f"sha256 {same} the shipped checkpoint (bit-identical needs the same torch build and thread count); "
              f"shipped metrics: {shipped.metrics}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lumbarlab", description="A lab for deep learning on lumbar spine images.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="versions, device, GPU, data and cache folders")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("lab", help="start JupyterLab on notebooks/00_start_here.ipynb (localhost, token on)")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: localhost only)")
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=_cmd_lab)

    p = sub.add_parser("dashboards", help="serve the Voilà dashboards of apps/ on localhost")
    p.add_argument("name", nargs="?", help="one dashboard, e.g. metric_explorer (default: all of apps/)")
    p.add_argument("--port", type=int, default=8866)
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=_cmd_dashboards)

    p = sub.add_parser("curriculum", help="execute every notebook with papermill into a build folder")
    p.add_argument("notebooks", nargs="*", help="notebooks to run (default: all of notebooks/)")
    p.add_argument("--out", default="build/curriculum")
    p.add_argument("--full", action="store_true", help="FAST=False: full sizes and epochs")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p.add_argument("--no-html", action="store_true")
    p.set_defaults(func=_cmd_curriculum)

    p = sub.add_parser("measure", help="clinical measurements from a corner CSV or a label map, as JSON")
    p.add_argument("--corners", help="corner CSV (level,edge,x_first,y_first,x_second,y_second)")
    p.add_argument("--view", choices=["lateral", "ap"], default="lateral")
    p.add_argument("--spacing", type=float, nargs="+", help="pixel size in mm (one value, or row and column)")
    p.add_argument("--image", help="the radiograph the corners were placed on (DICOM, PNG): its pixel spacing")
    p.add_argument("--mask", help="3D label map (NIfTI, MHA, NRRD or a DICOM folder; any orientation and spacing; "
                                  "whole-vertebra or body masks)")
    p.add_argument("--labels", choices=["auto", "verse", "totalsegmentator"], default="auto",
                   help="label values of --mask: VerSe/lumbarlab (T12 19, L1-L5 20-24) or TotalSegmentator v2 "
                        "(L5 27 ... T12 32); default: detect")
    p.add_argument("--ct", help="CT on the same grid as --mask, for trabecular HU")
    p.set_defaults(func=_cmd_measure)

    p = sub.add_parser("segment", help="segment the vertebrae of a CT, or the vertebrae, discs and canal of a "
                       "sagittal T2 MRI (--model mri-spine), with a zoo model; labels on the input's grid")
    p.add_argument("input", help="CT or sagittal MRI: NIfTI, MHA (SPIDER), NRRD or a DICOM series folder; any "
                                 "orientation and spacing")
    p.add_argument("--out", required=True, help="label map to write, e.g. labels.nii.gz (.nii, .mha, .nrrd)")
    p.add_argument("--model", default="ct-vertebrae", help="zoo model: ct-vertebrae (default) or mri-spine")
    p.add_argument("--labels", choices=["auto", "verse", "spider"], default="auto",
                   help="label values written: verse (lumbarlab: L1-L5 20-24, discs 119-124, canal 200) or spider "
                        "(L5 = 1 upwards, discs 201 upwards, canal 100); auto: spider for an MRI named as SPIDER "
                        "names its images (12_t2.mha), verse otherwise")
    p.add_argument("--report", help="also write a JSON report: per-level heights, Genant grade, trabecular HU")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: a GPU when there is one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_segment)

    p = sub.add_parser("grade", help="grade every disc of a sagittal T2 MRI: Pfirrmann, herniation and canal "
                       "stenosis with probabilities (mri-spine finds the discs, mri-discs grades them)")
    p.add_argument("input", help="sagittal T2: SPIDER .mha, NIfTI, NRRD or a DICOM series folder")
    p.add_argument("--report", help="also write the grades as JSON, e.g. grades.json")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: a GPU when there is one)")
    p.set_defaults(func=_cmd_grade)

    p = sub.add_parser("phantom", help="write phantom cases in VerSe / SPIDER / BUU-style layouts")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=1, help="number of cases (seeds seed … seed+n-1)")
    p.add_argument("--slip", action="append", metavar="LEVEL:PERCENT", help="e.g. L4:30 (repeatable)")
    p.add_argument("--cobb", type=float, help="lumbar scoliosis Cobb angle, degrees")
    p.add_argument("--fracture", action="append", metavar="LEVEL:PERCENT", help="height loss, e.g. L1:35")
    p.add_argument("--fracture-type", default="wedge", choices=["wedge", "biconcave", "crush"])
    p.add_argument("--pfirrmann", action="append", metavar="DISC:GRADE", help="e.g. L4-L5:4")
    p.add_argument("--herniation", action="append", metavar="DISC:MM", help="e.g. L4-L5:5")
    p.add_argument("--bmd", type=float, help="trabecular bone density, HU")
    p.add_argument("--stenosis", type=float, help="canal AP diameter, mm")
    p.add_argument("--lordosis", type=float, help="L1-S1 lordosis, degrees (20-80)")
    p.add_argument("--realism", default="clinical", choices=["clinical", "teaching"],
                   help="clinical (default): anatomy, texture and acquisition of real scans; teaching: the clean "
                        "cartoon of the same anatomy")
    p.add_argument("--domain-randomise", action="store_true",
                   help="random tissue intensities per case (training sets, SynthSeg-style)")
    p.add_argument("--orientation", default="RAS", help="axis order of the CT files, e.g. RAS, LPS, PIR (VerSe "
                                                        "stores some CTs as PIR)")
    p.add_argument("--shape", type=int, nargs=3, default=[160, 160, 200], metavar=("X", "Y", "Z"))
    p.add_argument("--spacing", type=float, nargs="+", default=[1.0],
                   help="mm (one value or three, e.g. 0.7 0.7 2.5 for thick axial slices)")
    p.set_defaults(func=_cmd_phantom)

    p = sub.add_parser("fetch", help="list, download or convert public lumbar spine datasets")
    p.add_argument("name", nargs="?", help="dataset name (see --list)")
    p.add_argument("--list", action="store_true", help="the registry: size, license, manual or direct")
    p.add_argument("--dest", help="parent folder (default: the data folder of `lumbarlab info`)")
    p.add_argument("--mirror", help="base URL that replaces the host's (same file names)")
    p.add_argument("--from", dest="from_path", help="convert a copy you already have (archive or folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("zoo", help="list, verify or train the phantom-trained model zoo")
    p.add_argument("action", choices=["list", "verify", "train"])
    p.add_argument("name", nargs="?", help="xray-slip | xray-vertebrae | xray-corners | ct-vertebrae (or modality/task)")
    p.add_argument("--folder", help="a zoo folder other than the shipped weights (list, verify)")
    p.add_argument("--out", help="train: where to write (default: the cache folder's zoo/)")
    p.add_argument("--install", action="store_true", help="train: replace the shipped checkpoint and manifest entry")
    p.set_defaults(func=_cmd_zoo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LumbarLabError as exc:
        print(f"lumbarlab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
