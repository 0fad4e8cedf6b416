"""data_fetch end to end without the internet: tiny archives in each dataset's real layout, served by a
local HTTP server, fetched (hash-checked), converted and loaded; failures leave the destination as it was."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import data_fetch
from data_fetch.registry import DATASETS, RemoteFile
from data_fetch.transfer import file_hash
from lumbarlab.errors import LumbarLabError


class _Handler(http.server.SimpleHTTPRequestHandler):
    cut_once: set[str] = set()  # paths whose first transfer breaks off half-way

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        name = self.path.lstrip("/")
        if name in self.cut_once:
            self.cut_once.discard(name)
            data = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def phantom_export(tmp_path_factory):
    """One small phantom case written in VerSe / SPIDER / BUU-style layouts (known geometry and labels)."""
    from lumbarlab.phantom import make_case
    from lumbarlab.phantom.export import write_case

    case = make_case(5, shape=(48, 48, 60), spacing=3.0, slip={"L4": 30})
    return write_case(case, tmp_path_factory.mktemp("phantom")), case


def _zip(path: Path, files: dict[str, Path | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, src in files.items():
            if isinstance(src, bytes):
                zf.writestr(name, src)
            else:
                zf.write(src, name)
    return path


def _register(monkeypatch, name: str, www: Path, files: list[str], wrong_hash: bool = False):
    remote = tuple(RemoteFile(f, (www / f).stat().st_size,
                              "sha256:" + ("0" * 64 if wrong_hash else file_hash(www / f)), "test") for f in files)
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], files=remote, base_url="http://unused.invalid/"))


def _spider_zips(www: Path, phantom) -> None:
    folder, _ = phantom
    mri = folder / "mri"
    _zip(www / "images.zip", {f"images/{p.name}": p for p in (mri / "images").iterdir()})
    _zip(www / "masks.zip", {f"masks/{p.name}": p for p in (mri / "masks").iterdir()})
    (www / "overview.csv").write_text("patient_id,subset\n1,training\n")
    (www / "radiological_gradings.csv").write_text("Patient,IVD label,Pfirrman grade\n1,1,2\n")


def test_spider_fetch_verify_convert_load(server, phantom_export, monkeypatch, tmp_path):
    from lumbarlab.datasets import FetchedVolumes
    from lumbarlab.io import read_image
    from lumbarlab.phantom.labels import to_spider

    www, url = server
    _spider_zips(www, phantom_export)
    _register(monkeypatch, "spider", www, ["images.zip", "masks.zip", "overview.csv", "radiological_gradings.csv"])
    folder = data_fetch.fetch("spider", tmp_path / "data", mirror=url, progress=False)
    index = json.loads((folder / "index.json").read_text())
    assert index["license"] == "CC BY 4.0" and len(index["cases"]) == 2
    assert all(v["sha256"] == v["registry"].split(":")[1] for v in index["downloads"].values())
    source = read_image(phantom_export[0] / "mri" / "masks" / "phantom0005_t2.mha")
    converted = read_image(folder / "labels" / "phantom0005_t2.nii.gz")
    np.testing.assert_allclose(converted.affine, source.affine, atol=1e-4)  # geometry kept
    # SPIDER → lumbarlab → SPIDER is the identity: vertebrae, discs and canal map back
    assert np.array_equal(to_spider(converted.array.astype(np.uint8)), source.array)
    assert {20, 23, 24, 124, 200} <= set(np.unique(converted.array).tolist())
    data = FetchedVolumes(folder)
    image, labels = data[0]
    assert image.shape[0] == 1 and image.shape[1:] == labels.shape


def test_spider_label_mapping_known_values():
    from data_fetch.convert import spider_to_lumbarlab

    spider = np.array([0, 1, 2, 5, 6, 103, 100, 201, 202, 206])
    assert spider_to_lumbarlab(spider).tolist() == [0, 24, 23, 20, 19, 22, 200, 124, 123, 119]
    from data_fetch.convert import spider_unmapped

    assert spider_unmapped(spider) == [] and spider_unmapped(np.array([0, 1, 25, 225, 7])) == [25, 225]


@pytest.mark.parametrize("name", ["verse19", "verse20"])
def test_verse_archive_layout(name, server, phantom_export, monkeypatch, tmp_path):
    from lumbarlab.io import read_image

    www, url = server
    ct = phantom_export[0] / "ct"
    archives = [f.path for f in DATASETS[name].files]  # training, validation, test
    top = archives[0][: -len(".zip")]
    files = {f"{top}/{'derivatives' if 'seg' in p.name else 'rawdata'}/sub-phantom0005/{p.name}": p for p in ct.iterdir()}
    _zip(www / archives[0], files)
    for other in archives[1:]:
        _zip(www / other, {f"{other[: -len('.zip')]}/README.txt": b"empty split"})
    _register(monkeypatch, name, www, archives)
    folder = data_fetch.fetch(name, tmp_path / "data", mirror=url, progress=False)
    case = json.loads((folder / "index.json").read_text())["cases"][0]
    assert case["id"] == "sub-phantom0005" and case["label"] == "labels/sub-phantom0005.nii.gz"
    assert {c["label"] for c in case["centroids"]} >= {20, 21, 22, 23, 24}
    assert np.array_equal(read_image(folder / case["label"]).array,
                          read_image(ct / "sub-phantom0005_seg-vert_msk.nii.gz").array)


@pytest.mark.parametrize("name", ["totalsegmentator", "totalsegmentator-small"])
def test_totalsegmentator_one_file_per_structure(name, server, phantom_export, monkeypatch, tmp_path):
    from lumbarlab.datasets import FetchedVolumes
    from lumbarlab.io import read_image, write_image

    www, url = server
    ct = phantom_export[0] / "ct"
    labels = read_image(ct / "sub-phantom0005_seg-vert_msk.nii.gz")
    case = tmp_path / "ts" / "s0000"
    (case / "segmentations").mkdir(parents=True)
    write_image(read_image(ct / "sub-phantom0005_ct.nii.gz"), case / "ct.nii.gz")
    names = {20: "vertebrae_L1", 21: "vertebrae_L2", 22: "vertebrae_L3", 23: "vertebrae_L4", 24: "vertebrae_L5",
             26: "sacrum", 19: "vertebrae_T12"}
    for value, structure in names.items():
        write_image(labels.with_array((labels.array == value).astype(np.uint8)), case / "segmentations" / f"{structure}.nii.gz")
    write_image(labels.with_array(np.zeros(labels.shape, np.uint8)), case / "segmentations" / "liver.nii.gz")
    (tmp_path / "ts" / "meta.csv").write_text("image_id;age;gender\ns0000;50;f\n")
    archive = DATASETS[name].files[0].path
    _zip(www / archive, {str(p.relative_to(tmp_path / "ts")): p for p in (tmp_path / "ts").rglob("*") if p.is_file()})
    _register(monkeypatch, name, www, [archive])
    folder = data_fetch.fetch(name, tmp_path / "data", mirror=url, progress=False)
    image, combined = FetchedVolumes(folder, canonical=False)[0]
    assert np.array_equal(combined.numpy(), labels.array.astype(np.int64))  # same values as VerSe's
    assert (folder / "meta.csv").exists()


def test_buu_manual_then_from_folder_interchangeable_with_phantom(phantom_export, tmp_path, capsys):
    from lumbarlab.cli import main
    from lumbarlab.datasets import LANDMARK_LEVELS, XrayDataset, fetched_xrays

    assert main(["fetch", "buu-lspine", "--dest", str(tmp_path / "data")]) == 1
    assert "services.informatics.buu.ac.th" in capsys.readouterr().out
    assert not (tmp_path / "data" / "buu-lspine").exists()
    folder, case = phantom_export
    assert main(["fetch", "buu-lspine", "--dest", str(tmp_path / "data"), "--from", str(folder / "xray"), "--quiet"]) == 0
    split = fetched_xrays(tmp_path / "data" / "buu-lspine", size=128)
    assert len(split) == 1 and split.corners.shape == (1, 22, 2)
    assert split.slip[0] == pytest.approx(30.0, abs=2.0)  # measured from the annotated corners
    image, corners = XrayDataset(split, "landmarks")[0]
    assert image.shape == (1, 128, 128) and corners.shape == (22, 2)
    assert list(LANDMARK_LEVELS)[-1] == "S1"


def test_rsna_from_zip(tmp_path):
    from dicom_files import ct_series

    rng = np.random.default_rng(1)
    src = tmp_path / "rsna"
    ct_series(src / "train_images" / "4003253" / "702807833", rng.uniform(0, 500, (8, 6, 4)).round(), intercept=0.0)
    for block, (tilt, z0) in enumerate(((-0.15, 30.0), (0.2, -10.0))):  # axial T2: two stacks angled to two discs
        ct_series(src / "train_images" / "4003253" / "2448190387", rng.uniform(0, 500, (6, 6, 3)).round(),
                  intercept=0.0, orientation=(1, 0, 0, 0, np.cos(tilt), np.sin(tilt)), origin=(0.0, 0.0, z0),
                  series_uid="1.2.3.2448190387", first_instance=1 + 3 * block, modality="MR")
    (src / "train.csv").write_text("study_id,spinal_canal_stenosis_l4_l5,left_neural_foraminal_narrowing_l5_s1\n"
                                   "4003253,Moderate,Normal/Mild\n")
    (src / "train_label_coordinates.csv").write_text(
        "study_id,series_id,instance_number,condition,level,x,y\n"
        "4003253,702807833,2,Spinal Canal Stenosis,L4/L5,3.5,4.25\n")
    (src / "train_series_descriptions.csv").write_text("study_id,series_id,series_description\n"
                                                       "4003253,702807833,Sagittal T2/STIR\n"
                                                       "4003253,2448190387,Axial T2\n")
    archive = _zip(tmp_path / "rsna.zip", {str(p.relative_to(src)): p for p in src.rglob("*") if p.is_file()})
    folder = data_fetch.fetch("rsna2024", tmp_path / "data", from_path=archive, progress=False)
    case = json.loads((folder / "index.json").read_text())["cases"][0]
    assert case["severity"] == {"spinal_canal_stenosis_l4_l5": 1, "left_neural_foraminal_narrowing_l5_s1": 0}
    assert case["coordinates"][0]["level"] == "L4/L5"
    by_series = {}
    for entry in case["series"]:
        by_series.setdefault(entry["series"], []).append(entry)
        assert (folder / entry["image"]).exists()
    assert by_series["702807833"][0]["description"] == "Sagittal T2/STIR" and by_series["702807833"][0]["stacks"] == 1
    axial = by_series["2448190387"]  # one series, two angled stacks, each naming its instances in slice order
    assert [e["stack"] for e in axial] == [1, 2] and sorted(i for e in axial for i in e["instances"]) == [1, 2, 3, 4, 5, 6]
    assert all(e["plane"] == "axial" and e["slices"] == 3 for e in axial)
    from lumbarlab.datasets import FetchedSeries

    series = FetchedSeries(folder, description="STIR")  # the plane comes from geometry, not the description
    assert series.info(0)["plane"] == "axial" and series.target_names == sorted(case["severity"])
    image, target = series[0]
    assert image.shape == (1, 6, 8, 4) and target.tolist() == [0, 1]  # foraminal l5/s1 normal, canal l4/l5 moderate
    assert len(FetchedSeries(folder, description="^Axial")) == 2


def test_hash_mismatch_leaves_the_destination_as_it_was(server, phantom_export, monkeypatch, tmp_path):
    www, url = server
    _spider_zips(www, phantom_export)
    files = ["images.zip", "masks.zip", "overview.csv", "radiological_gradings.csv"]
    _register(monkeypatch, "spider", www, files)
    good = data_fetch.fetch("spider", tmp_path / "data", mirror=url, progress=False)
    before = {p: p.read_bytes() for p in good.rglob("*") if p.is_file()}
    (www / "masks.zip").write_bytes((www / "masks.zip").read_bytes()[:-10] + b"tampered!!")  # the host's file changed
    data_fetch.fetch("spider", tmp_path / "data", mirror=url, progress=False)  # verified downloads are reused
    import shutil

    shutil.rmtree(tmp_path / "data" / ".downloads")  # now the tampered file must be transferred
    with pytest.raises(LumbarLabError, match="does not match the expected hash(.|\n)*registry's hash is: test"):
        data_fetch.fetch("spider", tmp_path / "data", mirror=url, progress=False)
    assert {p: p.read_bytes() for p in good.rglob("*") if p.is_file()} == before
    assert not any(p.name.startswith(".work-") for p in (tmp_path / "data").iterdir())


def test_interrupted_transfer_recovers(server, phantom_export, monkeypatch, tmp_path):
    www, url = server
    _spider_zips(www, phantom_export)
    _register(monkeypatch, "spider", www, ["images.zip", "masks.zip", "overview.csv", "radiological_gradings.csv"])
    _Handler.cut_once = {"images.zip"}
    with pytest.raises(LumbarLabError, match="images.zip"):
        data_fetch.fetch("spider", tmp_path / "data", mirror=url, progress=False)
    assert not (tmp_path / "data" / "spider").exists()
    assert not (tmp_path / "data" / ".downloads" / "spider" / "images.zip").exists()  # nothing half-written kept
    folder = data_fetch.fetch("spider", tmp_path / "data", mirror=url, progress=False)  # a clean restart
    assert len(json.loads((folder / "index.json").read_text())["cases"]) == 2


def test_archive_escaping_the_destination_is_refused(tmp_path):
    evil = _zip(tmp_path / "evil.zip", {"images/ok.txt": b"fine", "../../escaped.txt": b"gotcha"})
    with pytest.raises(LumbarLabError, match="outside the destination"):
        data_fetch.fetch("ctspine1k", tmp_path / "data", from_path=evil, progress=False)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "data" / "ctspine1k").exists()
    import tarfile

    with tarfile.open(tmp_path / "link.tar", "w") as tf:
        info = tarfile.TarInfo("images/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(LumbarLabError, match="link"):
        data_fetch.fetch("ctspine1k", tmp_path / "data", from_path=tmp_path / "link.tar", progress=False)


def test_registry_lists_the_survey_datasets(capsys):
    from lumbarlab.cli import main

    for name in ("spider", "verse19", "verse20", "totalsegmentator", "totalsegmentator-small", "lumbar-spine-mri",
                 "buu-lspine", "rsna2024", "ctspine1k", "aasce2019"):
        d = data_fetch.get(name)
        assert d.license and d.citation and d.homepage.startswith("http")
        assert d.direct or "lumbarlab fetch" in d.manual
    import re

    pinned = [(d.name, f) for d in DATASETS.values() for f in d.files if f.hash]
    assert {n for n, _ in pinned} >= {"spider", "totalsegmentator", "totalsegmentator-small"}
    for name, f in pinned:  # well-formed, and each says where it comes from
        assert re.fullmatch(r"md5:[0-9a-f]{32}|sha256:[0-9a-f]{64}", f.hash), (name, f.path)
        assert f.hash_source, (name, f.path)
    assert "10159290" in data_fetch.get("spider").homepage and "10047263" in data_fetch.get("totalsegmentator-small").homepage
    assert main(["fetch", "--list"]) == 0
    out = capsys.readouterr().out
    assert "rsna2024" in out and "manual" in out and "CC BY 4.0" in out
    with pytest.raises(LumbarLabError, match="fetch --list"):
        data_fetch.get("imaginary")


def test_aasce_layout_gives_ap_corners_with_the_phantom_cobb(tmp_path):
    """boostnet_labeldata: a .jpg per image, its 68 landmarks (four per vertebra, T1–L5) in <image>.jpg.mat."""
    from PIL import Image
    from scipy.io import savemat

    from lumbarlab.measure import measure_ap, read_corners_csv
    from lumbarlab.phantom import make_case

    src = tmp_path / "boostnet_labeldata"
    (src / "data" / "training").mkdir(parents=True)
    (src / "labels" / "training").mkdir(parents=True)
    names, truths = [], []
    for seed, cobb in ((3, 18.0), (4, 0.0)):
        case = make_case(seed, cobb=cobb, shape=(96, 64, 120), spacing=2.0)
        name = f"sunhl-1th-{seed:02d}-Mar-2017-{seed} A AP.jpg"
        Image.fromarray((255 * np.clip(case.ap.image, 0, 1)).astype(np.uint8)).save(src / "data" / "training" / name)
        p2 = np.zeros((68, 2))
        for i, level in enumerate(("T12", "L1", "L2", "L3", "L4", "L5")):
            quad = case.ap.corners[level]  # AASCE's stored order within a vertebra is not relied on: shuffle it
            p2[4 * (11 + i) : 4 * (12 + i)] = quad[np.random.default_rng(seed + i).permutation(4)]
        savemat(str(src / "labels" / "training" / f"{name}.mat"), {"p2": p2})
        names.append(name)
        truths.append(case.truth["cobb"]["angle_deg"])
    (src / "labels" / "training" / "filenames.csv").write_text("\n".join(names) + "\n")
    (src / "labels" / "training" / "angles.csv").write_text("0,0,18\n0,0,0\n")
    folder = data_fetch.fetch("aasce2019", tmp_path / "data", from_path=src, progress=False)
    cases = json.loads((folder / "index.json").read_text())["cases"]
    assert [c["view"] for c in cases] == ["ap", "ap"] and cases[0]["cobb_angles_deg"] == [0.0, 0.0, 18.0]
    for case, truth in zip(cases, truths, strict=True):
        corners = read_corners_csv(folder / case["landmarks"])
        assert list(corners) == ["T12", "L1", "L2", "L3", "L4", "L5"]
        for quad in corners.values():  # superior above inferior, left before right
            assert quad[0, 0] < quad[1, 0] and quad[3, 0] < quad[2, 0] and quad[:2, 1].mean() < quad[2:, 1].mean()
        assert measure_ap(corners, (2.0, 2.0)).cobb == pytest.approx(truth, abs=1.5)  # corners kept in order


def _mri_study(patient_dir: Path, rng, axial: bool = True) -> dict[str, np.ndarray]:
    """One Lumbar Spine MRI (Sudirman) study as the release stores it: Siemens ``.ima`` files, one folder per series,
    a three-plane localizer, sagittal T1 and T2, and an axial T2 in blocks angled to each disc (3 + 3 slices) plus
    one slice of its own at L5/S1. Returns the pixel arrays written, per series folder."""
    from dicom_files import ct_series

    root = f"1.2.826.0.1.{rng.integers(1e9)}"
    study = dict(modality="MR", intercept=0.0, shuffle=True, suffix=".ima", study_uid=root, patient_id="anonymised")
    written = {}
    for k, ori in enumerate(((0, 1, 0, 0, 0, -1), (1, 0, 0, 0, 0, -1), (1, 0, 0, 0, 1, 0))):  # sag, cor, axial scout
        ct_series(patient_dir / "LOCALIZER_0001", rng.uniform(0, 900, (10, 10, 1)).round(), orientation=ori,
                  series_uid=f"{root}.1", description="localizer", series_number=1, first_instance=k + 1,
                  image_type=("ORIGINAL", "PRIMARY", "M", "NORM"), **study)
    for number, name in ((2, "T1_TSE_SAG_0002"), (3, "T2_TSE_SAG_0003")):
        pixels = rng.uniform(0, 4000, (12, 10, 5)).round()  # (rows, cols, slices), 12-bit
        ct_series(patient_dir / name, pixels, spacing=(0.6875, 0.6875, 4.8), origin=(-10.0, -100.0, 60.0),
                  orientation=(0, 1, 0, 0, 0, -1), description=name[:-5].replace("_", " ").lower(),
                  series_number=number, **study)
        written[name] = pixels
    if axial:
        uid = f"{root}.4"
        for block, (tilt, z0, n) in enumerate(((-0.20, 40.0, 3), (0.05, 10.0, 3), (0.35, -25.0, 1))):
            c, s = np.cos(tilt), np.sin(tilt)
            ct_series(patient_dir / "T2_TSE_TRA_0004", rng.uniform(0, 4000, (8, 8, n)).round(), spacing=(0.6, 0.6, 4.4),
                      origin=(-40.0, -40.0, z0), orientation=(1, 0, 0, 0, c, s), series_uid=uid,
                      description="t2_tse_tra", series_number=4, first_instance=1 + 10 * block, **study)
    return written


def test_lumbar_spine_mri_ima_studies_with_notes(tmp_path):
    from openpyxl import Workbook

    from lumbarlab.datasets import FetchedSeries
    from lumbarlab.io import read_image

    rng = np.random.default_rng(7)
    src = tmp_path / "Lumbar Spine MRI Dataset"
    written = _mri_study(src / "01_MRI_Data" / "0001" / "L-SP", rng)
    _mri_study(src / "01_MRI_Data" / "0002" / "L-SP", rng, axial=False)
    book = Workbook()
    book.active.append(["Patient ID", "Clinician's Notes"])
    book.active.append([1, "L4-L5 disc bulge indenting the thecal sac. L5-S1 normal."])
    book.active.append([2, "Normal study."])
    book.save(src / "Radiologists Report.xlsx")
    archive = _zip(tmp_path / "k57fr854j2-2.zip", {str(p.relative_to(src.parent)): p for p in src.rglob("*") if p.is_file()})

    folder = data_fetch.fetch("lumbar-spine-mri", tmp_path / "data", from_path=archive, progress=False)
    cases = json.loads((folder / "index.json").read_text())["cases"]
    assert [c["id"] for c in cases] == ["0001", "0002"]
    first = cases[0]
    assert first["notes"].startswith("L4-L5 disc bulge") and cases[1]["notes"] == "Normal study."
    assert first["skipped"] == [{"series": 1, "description": "localizer", "reason": "localizer"}]
    sag = [s for s in first["series"] if s["plane"] == "sagittal"]
    assert [(s["series"], s["sequence"], s["slices"]) for s in sag] == [(2, "T1", 5), (3, "T2", 5)]
    axial = [s for s in first["series"] if s["plane"] == "axial"]
    assert sorted(s["slices"] for s in axial) == [1, 3, 3] and {s["stacks"] for s in axial} == {3}
    assert all(s["spacing"][2] == pytest.approx(4.4) for s in axial if s["slices"] > 1)  # each block is evenly spaced

    t1 = read_image(folder / sag[0]["image"])  # pixels and geometry survive: (col, row, slice), rows run foot-ward
    assert t1.spacing == pytest.approx((0.6875, 0.6875, 4.8))
    assert set(np.unique(t1.array)) <= set(np.unique(written["T1_TSE_SAG_0002"]))
    assert np.sort(t1.array.ravel()) == pytest.approx(np.sort(written["T1_TSE_SAG_0002"].ravel()))

    t2_sag = FetchedSeries(folder, plane="sagittal", sequence="T2")
    assert len(t2_sag) == 2 and t2_sag.target_names == []
    image, target = t2_sag[0]
    assert image.shape[0] == 1 and sorted(image.shape[1:]) == [5, 10, 12] and target.numel() == 0
    assert "thecal sac" in t2_sag.info(0)["notes"]
    with pytest.raises(LumbarLabError, match="no series"):
        FetchedSeries(folder, plane="coronal")


def test_ctspine1k_volumes_and_seg_labels(phantom_export, tmp_path):
    from lumbarlab.datasets import FetchedVolumes

    folder, _ = phantom_export
    ct = folder / "ct"
    image = next(p for p in ct.rglob("*_ct.nii.gz"))
    label = next(p for p in ct.rglob("*_seg-vert_msk.nii.gz"))
    src = tmp_path / "CTSpine1K"
    files = {"rawdata/volumes/HNSCC-3DCT-RT/HN_P001.nii.gz": image, "rawdata/labels/HNSCC-3DCT-RT/HN_P001_seg.nii.gz": label,
             "rawdata/volumes/COVID-19/volume-covid19-A-0003.nii.gz": image}
    archive = _zip(tmp_path / "ctspine1k.zip", files)
    out = data_fetch.fetch("ctspine1k", tmp_path / "data", from_path=archive, progress=False)
    cases = {c["id"]: c for c in json.loads((out / "index.json").read_text())["cases"]}
    assert cases["HN_P001"]["subset"] == "HNSCC-3DCT-RT" and cases["HN_P001"]["levels"][-1] == 26
    assert {20, 21, 22, 23, 24} <= set(cases["HN_P001"]["levels"]) and "label" not in cases["volume-covid19-A-0003"]
    volumes = FetchedVolumes(out)
    assert len(volumes) == 1
    from lumbarlab.io import read_image

    assert np.array_equal(volumes[0][1].numpy(), read_image(label, canonical=True).array.astype(np.int64))
    src.mkdir()
    bad = src / "labels" / "x"
    bad.mkdir(parents=True)
    (src / "volumes" / "x").mkdir(parents=True)
    import shutil

    shutil.copy2(image, src / "volumes" / "x" / "c.nii.gz")
    from lumbarlab.io import write_image

    vol = read_image(label)
    write_image(vol.with_array(np.full(vol.shape, 200, np.uint16)), bad / "c_seg.nii.gz")
    with pytest.raises(LumbarLabError, match="outside VerSe"):
        data_fetch.fetch("ctspine1k", tmp_path / "data", from_path=src, progress=False)
    assert {c["id"] for c in json.loads((out / "index.json").read_text())["cases"]} == set(cases)  # old copy kept


def test_buu_release_layout_header_less_rows_either_column_order(tmp_path):
    """BUU-LSPINE as released: LA/<case>.jpg + LA/<case>.csv (11 header-less rows x1,y1,x2,y2: L1–L5 superior and
    inferior endplates, S1 superior) and AP/<case>.jpg + 10 rows. Which point of a row is anterior is read from the
    S1 endplate (the promontory is the lower point), so a file listing posterior first converts the same."""
    from PIL import Image

    from lumbarlab.datasets import fetched_xrays
    from lumbarlab.measure import measure_ap, read_corners_csv
    from lumbarlab.phantom import make_case

    case = make_case(5, shape=(96, 64, 120), spacing=2.0, slip={"L4": 30}, cobb=15.0)
    root = tmp_path / "BUU-LSPINE_400"
    for view in ("LA", "AP"):
        (root / view).mkdir(parents=True)

    def save(image, path):
        Image.fromarray((255 * np.clip(image, 0, 1)).astype(np.uint8)).save(path)

    lateral_rows = []
    for level in ("L1", "L2", "L3", "L4", "L5"):
        c = case.lateral.corners[level]
        lateral_rows += [[*c[0], *c[1]], [*c[3], *c[2]]]  # (anterior, posterior) of each endplate
    lateral_rows.append([*case.lateral.corners["S1"][0], *case.lateral.corners["S1"][1]])
    for name, rows in (("0001-F-037Y1", lateral_rows), ("0002-M-050Y1", [r[2:] + r[:2] for r in lateral_rows])):
        save(case.lateral.image, root / "LA" / f"{name}.jpg")
        (root / "LA" / f"{name}.csv").write_text("\n".join(",".join(f"{v:.3f}" for v in r) for r in rows) + "\n")
    ap_rows = []
    for level in ("L1", "L2", "L3", "L4", "L5"):
        c = case.ap.corners[level]
        ap_rows += [[*c[1], *c[0]], [*c[2], *c[3]]]  # listed right to left: the converter sorts by x
    save(case.ap.image, root / "AP" / "0001-F-037Y1.jpg")
    (root / "AP" / "0001-F-037Y1.csv").write_text("\n".join(",".join(f"{v:.3f}" for v in r) for r in ap_rows) + "\n")

    folder = data_fetch.fetch("buu-lspine", tmp_path / "data", from_path=root, progress=False)
    cases = {c["id"]: c for c in json.loads((folder / "index.json").read_text())["cases"]}
    assert sorted(cases) == ["0001-F-037Y1_ap", "0001-F-037Y1_lateral", "0002-M-050Y1_lateral"]
    for name in ("0001-F-037Y1_lateral", "0002-M-050Y1_lateral"):
        assert cases[name]["annotation"] == "buu" and cases[name]["anterior_side"] == "left"
        corners = read_corners_csv(folder / cases[name]["landmarks"])
        for level in ("L1", "L2", "L3", "L4", "L5"):
            assert np.allclose(corners[level], case.lateral.corners[level], atol=2e-3), (name, level)
        assert np.allclose(corners["S1"][:2], case.lateral.corners["S1"][:2], atol=2e-3)
        assert np.isnan(corners["S1"][2:]).all()  # no S1 inferior endplate on a lateral annotation
    split = fetched_xrays(folder, size=128)
    assert len(split) == 2 and split.slip == pytest.approx([30.0, 30.0], abs=2.0)
    ap = read_corners_csv(folder / cases["0001-F-037Y1_ap"]["landmarks"])
    assert measure_ap(ap, (2.0, 2.0)).cobb == pytest.approx(case.truth["cobb"]["angle_deg"], abs=1.5)
    (root / "LA" / "0003-F-040Y1.jpg").write_bytes((root / "LA" / "0001-F-037Y1.jpg").read_bytes())
    (root / "LA" / "0003-F-040Y1.csv").write_text("1,2,3,4\n5,6,7,8\n")
    with pytest.raises(LumbarLabError, match="11 rows"):
        data_fetch.fetch("buu-lspine", tmp_path / "data", from_path=root, progress=False)


def test_dicom_studies_outside_the_release_layout_get_pseudonyms(tmp_path):
    """A study folder without the release's patient numbers: cases are named by a salted hash of PatientID, and
    neither the name nor the ID reaches a file name or index.json."""
    from dicom_files import ct_series

    rng = np.random.default_rng(3)
    ct_series(tmp_path / "export" / "DICOM" / "S1", rng.uniform(0, 900, (8, 8, 4)).round(), modality="MR",
              intercept=0.0, orientation=(0, 1, 0, 0, 0, -1), description="T2 SAG", series_number=3,
              patient_name="Doe^Jane", patient_id="MRN-0042")
    folder = data_fetch.fetch("lumbar-spine-mri", tmp_path / "data", from_path=tmp_path / "export", progress=False)
    text = (folder / "index.json").read_text()
    names = " ".join(str(p) for p in folder.rglob("*"))
    assert "MRN-0042" not in text + names and "Doe" not in text + names
    (case,) = json.loads(text)["cases"]
    assert case["id"].startswith("p") and len(case["id"]) == 11 and case["series"][0]["plane"] == "sagittal"


@pytest.mark.parametrize("tilt", [-60.0, -40.0, -15.0, 0.0, 25.0, 40.0, 60.0])
def test_endplate_quad_any_order_any_tilt(tilt):
    from itertools import permutations

    from data_fetch.convert import endplate_quad

    t = np.radians(tilt)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    box = np.array([[-20.0, -12.0], [20.0, -12.0], [20.0, 12.0], [-20.0, 12.0]])  # y down: superior first
    want = box @ rot.T + [100.0, 300.0]
    for order in permutations(range(4)):
        assert np.allclose(endplate_quad(want[list(order)]), want), order


def test_the_old_package_name_reaches_the_moved_modules():
    """`data_fetch` is an alias of lumbarlab.fetch: its old module paths (data_fetch.fetch was the module now named
    lumbarlab.fetch.install) import, and `data_fetch.fetch(...)` is still the function."""
    import importlib

    import lumbarlab.fetch as fetch
    from data_fetch.fetch import get  # the old module path

    assert get is fetch.install.get and callable(data_fetch.fetch) and data_fetch.fetch is fetch.fetch
    for name in ("convert", "registry", "transfer"):
        assert importlib.import_module(f"data_fetch.{name}") is getattr(fetch, name)
