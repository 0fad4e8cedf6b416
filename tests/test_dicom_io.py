"""DICOM and the other formats through lumbarlab.io.read_image: geometry, rescale, MONOCHROME1,
multi-frame, missing slices, truncation, de-identification, canonical reorientation."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_files import ct_series, dicom_bytes

from lumbarlab.errors import LumbarLabError
from lumbarlab.io import read_image, to_canonical, write_image
from lumbarlab.volume import Volume


@pytest.fixture
def hu():
    rng = np.random.default_rng(0)
    return np.round(rng.uniform(-1000, 2000, (12, 10, 6)))  # (rows, cols, slices)


def test_series_geometry_and_rescale(tmp_path, hu):
    ct_series(tmp_path / "ct", hu, spacing=(0.8, 0.7, 2.5), origin=(-100.0, -120.0, 30.0), slope=2.0, intercept=-1024)
    (tmp_path / "ct" / "README.txt").write_text("not dicom")  # skipped
    vol = read_image(tmp_path / "ct")
    assert vol.shape == (10, 12, 6)  # [column, row, slice]
    np.testing.assert_allclose(vol.array, hu.transpose(1, 0, 2), atol=1.0)  # slope 2 rounds to even HU
    assert vol.spacing == pytest.approx((0.8, 0.7, 2.5))
    # LPS (-100, -120, 30) → RAS (100, 120, 30); rows along +y (posterior) → RAS -y
    assert vol.origin == pytest.approx((100.0, 120.0, 30.0))
    np.testing.assert_allclose(vol.direction, np.diag([-1.0, -1.0, 1.0]))
    # world position of voxel (col 3, row 5, slice 2), against the DICOM formula in LPS
    lps = np.array([-100.0, -120.0, 30.0]) + 3 * 0.8 * np.array([1, 0, 0]) + 5 * 0.7 * np.array([0, 1, 0]) + 2 * 2.5 * np.array([0, 0, 1])
    np.testing.assert_allclose(vol.index_to_world(np.array([[3, 5, 2]]))[0], np.diag([-1, -1, 1]) @ lps)


def test_canonical_reorientation_keeps_world_positions(tmp_path, hu):
    ct_series(tmp_path / "ct", hu)
    vol = read_image(tmp_path / "ct")
    can = read_image(tmp_path / "ct", canonical=True)
    np.testing.assert_allclose(can.direction, np.eye(3), atol=1e-9)
    ijk = np.array([[1, 2, 3]])
    world = vol.index_to_world(ijk)[0]
    back = np.round(can.world_to_index(world[None])[0]).astype(int)
    assert can.array[tuple(back)] == vol.array[1, 2, 3]
    # a NIfTI written from the canonical volume reads back the same
    write_image(can, tmp_path / "ct.nii.gz")
    again = read_image(tmp_path / "ct.nii.gz")
    np.testing.assert_allclose(again.affine, can.affine, atol=1e-5)


def test_missing_slice_duplicate_and_mixed_series_are_reported(tmp_path, hu):
    paths = ct_series(tmp_path / "gap", hu)
    paths[3].unlink()  # slice index 3 of 6
    with pytest.raises(LumbarLabError, match="missing"):
        read_image(tmp_path / "gap")
    ct_series(tmp_path / "two", hu, series_uid="1.2.3.4")
    ct_series(tmp_path / "two" / "b", hu, series_uid="1.2.3.5")
    with pytest.raises(LumbarLabError, match="2 series"):
        read_image(tmp_path / "two")
    from lumbarlab.dicom import read_dicom_series

    assert read_dicom_series(tmp_path / "two", series_uid="1.2.3.5").shape == (10, 12, 6)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("hello")
    with pytest.raises(LumbarLabError, match="no DICOM images"):
        read_image(tmp_path / "empty")


def test_truncated_and_non_image_files_name_the_file(tmp_path, hu):
    paths = ct_series(tmp_path / "ct", hu, shuffle=False)
    data = paths[0].read_bytes()
    bad = tmp_path / "cut.dcm"
    bad.write_bytes(data[:-150])
    with pytest.raises(LumbarLabError, match="cut.dcm"):
        read_image(bad)
    txt = tmp_path / "notes.nii.gz"
    txt.write_text("not an image")
    with pytest.raises(LumbarLabError, match="notes.nii.gz"):
        read_image(txt)
    with pytest.raises(LumbarLabError, match="no such file"):
        read_image(tmp_path / "absent.mha")


def test_monochrome1_and_16_bit_png(tmp_path):
    from PIL import Image

    from lumbarlab.dicom import read_dicom_image

    pixels = np.tile(np.arange(40, dtype=np.uint16) * 100, (32, 1))
    (tmp_path / "m1.dcm").write_bytes(dicom_bytes(pixels, "MONOCHROME1"))
    (tmp_path / "m2.dcm").write_bytes(dicom_bytes(pixels, "MONOCHROME2", slope=2.0, intercept=-5.0))
    m1, _ = read_dicom_image(tmp_path / "m1.dcm")
    m2, spacing = read_dicom_image(tmp_path / "m2.dcm")
    np.testing.assert_allclose(m2, pixels * 2.0 - 5.0)
    # inverted within the 12 stored bits (not the image's own min/max): bright = dense, the same for every file
    np.testing.assert_allclose(m1, 4095.0 - pixels.astype(float))
    assert spacing == (1.0, 1.0)
    Image.fromarray(pixels).save(tmp_path / "p16.png")
    vol = read_image(tmp_path / "p16.png")
    assert vol.shape == (40, 32, 1) and vol.array.max() == 3900


def test_multiframe(tmp_path, hu):
    import pydicom
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedCTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = EnhancedCTImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("mf.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = EnhancedCTImageStorage, meta.MediaStorageSOPInstanceUID, generate_uid()
    rows, cols, n = hu.shape
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, n
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1.0, -1024.0
    shared = Dataset()
    orient, measures = Dataset(), Dataset()
    orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing = [0.5, 0.6]
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orient]), Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in reversed(range(n)):  # stored top-down: the reader must sort by position
        f, pos = Dataset(), Dataset()
        pos.ImagePositionPatient = [0.0, 0.0, 3.0 * k]
        f.PlanePositionSequence = Sequence([pos])
        frames.append(f)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.stack([(hu[:, :, k] + 1024).astype(np.uint16) for k in reversed(range(n))]).tobytes()
    pydicom.dcmwrite(str(tmp_path / "mf.dcm"), ds, enforce_file_format=True)
    vol = read_image(tmp_path / "mf.dcm")
    assert vol.shape == (cols, rows, n) and vol.spacing == pytest.approx((0.6, 0.5, 3.0))
    np.testing.assert_allclose(vol.array, hu.transpose(1, 0, 2))


def test_deidentify_removes_identifiers_and_keeps_series_together(tmp_path, hu):
    import pydicom

    from lumbarlab.dicom import deidentify

    paths = ct_series(tmp_path / "ct", hu, patient_name="Doe^Jane")
    out = tmp_path / "anon"
    out.mkdir()
    series = set()
    for p in paths:
        ds = deidentify(pydicom.dcmread(str(p)), salt="study-7")
        pydicom.dcmwrite(str(out / p.name), ds)
        series.add(ds.SeriesInstanceUID)
    assert len(series) == 1  # same old UID → same new UID
    for p in out.iterdir():
        raw = p.read_bytes()
        for secret in (b"Doe^Jane", b"P-12345", b"19700101", b"General Hospital", b"private vendor note"):
            assert secret not in raw
        ds = pydicom.dcmread(str(p))
        assert ds.PatientIdentityRemoved == "YES" and ds.SeriesInstanceUID.startswith("2.25.")
    vol = read_image(out)
    np.testing.assert_allclose(vol.array, hu.transpose(1, 0, 2))  # the image survives


def test_to_canonical_flips_and_permutes():
    arr = np.arange(24, dtype=float).reshape(2, 3, 4)
    direction = np.array([[0, 0, -1.0], [1.0, 0, 0], [0, 1.0, 0]])  # i→A, j→S, k→-R
    vol = Volume(arr, (1.0, 2.0, 3.0), (5.0, 6.0, 7.0), direction)
    can = to_canonical(vol)
    np.testing.assert_allclose(can.direction, np.eye(3))
    assert can.spacing == (3.0, 1.0, 2.0) and can.shape == (4, 2, 3)
    for ijk in ([0, 0, 0], [1, 2, 3], [1, 0, 2]):
        world = vol.index_to_world(np.array([ijk]))[0]
        back = np.round(can.world_to_index(world[None])[0]).astype(int)
        assert can.array[tuple(back)] == vol.array[tuple(ijk)]


def test_scan_splits_series_into_stacks_and_finds_scouts(tmp_path, hu):
    """A study folder: an axial series in two angled blocks (2.5 mm steps, 20 mm apart), a sagittal series and an
    unnamed three-plane scout. Scanning reads headers only; stacks are evenly spaced runs of one orientation."""
    from lumbarlab.dicom import read_dicom_files, scan_dicom, slice_plane, split_stacks

    ct_series(tmp_path / "tra", hu, series_uid="1.2.3.10", series_number=10, description="t2 tra", suffix=".IMA",
              gaps={3: 20.0})  # slices 0–2, then 3–5 after a 20 mm jump: two blocks
    ct_series(tmp_path / "sag", hu, series_uid="1.2.3.11", series_number=11, orientation=(0, 1, 0, 0, 0, -1))
    for k, ori in enumerate(((0, 1, 0, 0, 0, -1), (1, 0, 0, 0, 0, -1), (1, 0, 0, 0, 1, 0))):
        ct_series(tmp_path / "scout", hu[:, :, :1], series_uid="1.2.3.1", series_number=1, orientation=ori,
                  first_instance=k + 1)
    (tmp_path / "notes.txt").write_text("not DICOM")
    series = scan_dicom(tmp_path)
    assert [(s.number, s.localizer) for s in series] == [(1, True), (10, False), (11, False)]
    tra = series[1]
    assert tra.description == "t2 tra" and len(tra.slices) == hu.shape[2]
    stacks = split_stacks(tra.slices)
    assert [len(s) for s in stacks] == [3, hu.shape[2] - 3]
    assert [slice_plane(s[0].orientation) for s in (stacks[0], split_stacks(series[2].slices)[0])] == ["axial", "sagittal"]
    vol = read_dicom_files([s.path for s in stacks[1]])
    assert vol.spacing[2] == pytest.approx(2.5) and np.allclose(vol.array, hu[:, :, 3:].transpose(1, 0, 2))
    with pytest.raises(LumbarLabError, match="inconsistent"):
        read_dicom_files([s.path for s in tra.slices])  # the whole series is not one volume


@pytest.mark.parametrize("kind", ["hu", "float"])
def test_write_dicom_series_round_trip_keeps_values_and_geometry(tmp_path, hu, kind):
    """An oblique volume written as a DICOM series folder reads back with its geometry; integer HU exactly,
    float MR-like values within half a rescale step; no patient data is written."""
    import pydicom

    ct_series(tmp_path / "src", hu, orientation=(0.96, 0.28, 0.0, -0.28, 0.96, 0.0), spacing=(0.8, 0.7, 2.5))
    vol = read_image(tmp_path / "src")
    if kind == "float":
        vol = vol.with_array(np.asarray(vol.array, np.float64) / 7.3 + 0.25)
    out = write_image(vol, tmp_path / "written", modality="CT")
    back = read_image(out)
    step = (np.ptp(vol.array) / 65535) if kind == "float" else 0.0
    float32 = 1e-6 * np.abs(vol.array).max()  # the reader returns float32 modality values
    assert np.abs(back.array - vol.array).max() <= step / 2 + float32
    assert back.spacing == pytest.approx(vol.spacing) and np.allclose(back.origin, vol.origin)
    assert np.allclose(back.direction, vol.direction, atol=1e-6)
    first = pydicom.dcmread(sorted(out.iterdir())[0])
    assert first.PatientName == "ANONYMOUS" and first.PatientIdentityRemoved == "YES" and first.Modality == "CT"
    write_image(vol.with_array(np.zeros(vol.shape)), out)  # replacing a series leaves no stray files
    assert len(list(out.iterdir())) == vol.shape[2] and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_mhd_png_jpeg(tmp_path):
    vol = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), (0.5, 0.6, 2.0), (1.0, -2.0, 3.0))
    write_image(vol, tmp_path / "v.mhd")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mhd", "v.zraw"]  # header + its data, nothing else
    back = read_image(tmp_path / "v.mhd")
    assert np.array_equal(back.array, vol.array) and np.allclose(back.origin, vol.origin)
    picture = Volume(np.arange(12, dtype=np.uint16).reshape(4, 3, 1) * 5000, (1.0, 1.0, 1.0))
    write_image(picture, tmp_path / "p.png")
    assert np.array_equal(read_image(tmp_path / "p.png").array, picture.array)  # 16-bit kept, [col, row] kept
    write_image(read_image(tmp_path / "p.png"), tmp_path / "again.png")  # what read_image gives writes back
    assert np.array_equal(read_image(tmp_path / "again.png").array, picture.array)
    with pytest.raises(LumbarLabError, match="8-bit"):
        write_image(picture, tmp_path / "p.jpg")
    gray = Volume(np.linspace(0, 1, 64 * 48).reshape(64, 48, 1), (1.0, 1.0, 1.0))
    write_image(gray, tmp_path / "g.jpg")
    assert np.abs(read_image(tmp_path / "g.jpg").array / 255 - gray.array).max() < 0.05  # lossy, 8-bit
    with pytest.raises(LumbarLabError, match="one slice"):
        write_image(vol, tmp_path / "v.png")
    with pytest.raises(LumbarLabError, match="window and scale"):  # HU would be clipped to [0, 1] silently
        write_image(Volume(np.full((4, 3, 1), -350.5), (1.0, 1.0, 1.0)), tmp_path / "ct.png")
    assert not (tmp_path / "ct.png").exists()


def test_write_png_refuses_floats_it_would_clip(tmp_path):
    from lumbarlab.io import read_png, write_png

    with pytest.raises(LumbarLabError, match=r"floats in \[0, 1\]"):
        write_png(np.array([[0.0, 1.5]]), tmp_path / "x.png")
    with pytest.raises(LumbarLabError, match="floats"):
        write_png(np.array([[np.nan, 0.5]]), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()  # nothing half-written
    write_png(np.array([[0.0, 1.0]]), tmp_path / "ok.png", bits=16)
    assert read_png(tmp_path / "ok.png").tolist() == [[0, 65535]]


def test_view3d_cache_tells_geometry_apart():
    from lumbarlab.widgets.view3d import cache_key

    a = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4), (1.0, 1.0, 1.0))
    assert cache_key(a) == cache_key(a.with_array(a.array.copy()))
    assert cache_key(a) != cache_key(Volume(a.array, (1.0, 1.0, 2.5)))  # same voxels, other spacing
    assert cache_key(a) != cache_key(Volume(a.array, (1.0, 1.0, 1.0), (0.0, 0.0, 5.0)))  # other origin
    changed = a.array.copy()
    changed[1, 2, 3] += 1  # one voxel, which a strided sample of the bytes would miss
    assert cache_key(a) != cache_key(a.with_array(changed))
    assert cache_key(a) != cache_key(a.with_array(a.array.astype(np.float64)))
