"""The CT panel without a browser: uploads of every form a user has (NIfTI, MHA, a zipped DICOM series) and of
broken ones, a phantom case measured against its truth, and the panel keeping its last good case after an error."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume, reorient
from lumbarlab.widgets.ct_panel import read_ct_upload


@pytest.fixture(scope="module")
def phantom_ct():
    from lumbarlab.phantom import make_case

    return make_case(900_011, shape=(156, 120, 132), spacing=2.0, modalities=("ct",), bmd=90.0,
                     fracture={"L2": 40.0})


def _bytes_of(volume: Volume, name: str, tmp_path) -> bytes:
    from lumbarlab.io import write_image

    path = tmp_path / name
    write_image(volume, path, modality="CT")
    return path.read_bytes()


def _zipped_series(volume: Volume, tmp_path) -> bytes:
    from lumbarlab.io import write_image

    folder = tmp_path / "series"
    write_image(volume, folder, modality="CT")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"study/CT/{path.name}")
    return buffer.getvalue()


@pytest.mark.parametrize("form", ["LPS.nii.gz", "PIR.mha", "LPS-dicom.zip"])
def test_uploads_of_every_form_read_the_same_ct(phantom_ct, form, tmp_path):
    ct = phantom_ct.ct.with_array(np.round(phantom_ct.ct.array).astype(np.int16))
    turned = reorient(ct, form.split("-")[0].split(".")[0])
    if form.endswith(".zip"):
        content, name = _zipped_series(turned, tmp_path), "scan.zip"
    else:
        name = "scan." + form.split(".", 1)[1]
        content = _bytes_of(turned, name, tmp_path)
    got = read_ct_upload(name, content)
    assert sorted(got.shape) == sorted(ct.shape)
    # the same world position holds the same HU, whatever the file's axis order
    world = ct.index_to_world(np.array([78.0, 60.0, 66.0]))
    ijk = np.rint(got.world_to_index(world)).astype(int)
    assert float(got.array[tuple(ijk)]) == pytest.approx(float(ct.array[78, 60, 66]), abs=1.0)


def test_broken_uploads_say_which_file_and_why(tmp_path):
    with pytest.raises(LumbarLabError, match="notes.txt"):
        read_ct_upload("notes.txt", b"x")
    with pytest.raises(LumbarLabError, match="broken.nii.gz"):
        read_ct_upload("broken.nii.gz", b"\x1f\x8b" + b"\0" * 100)
    with pytest.raises(LumbarLabError, match="not a readable zip"):
        read_ct_upload("scan.zip", b"PK\x03\x04 not really")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../evil.dcm", b"x")
    with pytest.raises(LumbarLabError, match="outside"):
        read_ct_upload("evil.zip", buffer.getvalue())


def test_panel_measures_the_phantom_and_keeps_its_case_after_a_bad_upload(phantom_ct, tmp_path):
    from lumbarlab.widgets import CTPanel

    panel = CTPanel(seed=900_011, level="L2", fracture=40.0, bmd=90.0)
    assert panel.message.value == ""
    rep = panel.result["report"]
    assert {"L1", "L2", "L3", "L4", "L5"} <= set(rep["levels_found"])
    # the phantom's L1 was built at 90 HU: the ROI on the predicted mask reads it within 20 HU
    assert rep["vertebrae"]["L1"]["trabecular_hu"] == pytest.approx(90.0, abs=20.0)
    assert rep["vertebrae"]["L2"]["height_loss_percent"] > rep["vertebrae"]["L3"]["height_loss_percent"] + 10
    assert set(panel.result["centres"]) >= {20, 21, 22, 23, 24}
    l2_centre = panel.result["centres"][21]
    true_l2 = phantom_ct.labels.index_to_world(np.argwhere(phantom_ct.labels.array == 21).mean(axis=0))
    assert np.linalg.norm(l2_centre - true_l2) < 10.0  # mm
    assert "ll-ct-worst-level" in panel.report.value and panel.view.value[:4] == b"\x89PNG"
    before = panel.result
    panel._on_upload({"new": ({"name": "notes.txt", "content": b"x"},)})
    assert "notes.txt" in panel.message.value and panel.result is before
    panel.set(seed=-1)
    assert "seed" in panel.message.value and panel.result is before


def test_denoise_toggle_and_3d_view():
    from lumbarlab.widgets import CTPanel

    panel = CTPanel(seed=900_013, fracture=0.0, dose=0.25)
    noisy = np.asarray(panel.result["image"].array)
    panel.set(denoise=True)
    assert panel.message.value == ""
    clean = np.asarray(panel.result["image"].array)
    assert "denoise" in panel.result["seconds"] and "Denoised by ct-denoise" in panel.report.value
    soft = noisy > -200  # the body: noise SD falls once the denoiser has run (pixels of 2 mm, outside its training)
    assert np.std(np.diff(clean, axis=0)[soft[1:]]) < np.std(np.diff(noisy, axis=0)[soft[1:]])
    panel.guard(panel._show3d)
    assert panel.message.value == "" and type(panel.box3d.children[0]).__name__ == "NiiVue"
    panel.set(fracture=20.0)  # a new case clears the 3D view (it would show the old scan)
    assert panel.box3d.children == ()
