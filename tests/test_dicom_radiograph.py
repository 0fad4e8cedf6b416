"""Real-world DICOM: projection radiographs (CR/DX) without slice geometry, their pixel spacing and its
source, MONOCHROME1 and VOI windows, and every compressed transfer syntax PACS exports use — written here
with the encoders the installed packages have (and a small lossless-JPEG encoder of our own) and read back
through read_image, read_dicom_bytes and the dashboards' upload decoder."""

from __future__ import annotations

import io

import numpy as np
import pytest
from jpeg_lossless import encode_jpeg_lossless

from lumbarlab.dicom import read_dicom_bytes, voi_display
from lumbarlab.errors import LumbarLabError
from lumbarlab.io import display_image, pixel_spacing, read_image
from lumbarlab.measure import measure_lateral
from lumbarlab.widgets.upload import radiograph_from_bytes


def _radiograph(pixels: np.ndarray, bits: int = 12, modality: str = "CR", photometric: str = "MONOCHROME1",
                **attrs):
    """A projection radiograph as real CR/DX files come: no ImagePositionPatient/ImageOrientationPatient, no
    patient geometry, 16-bit storage of ``bits`` bits, and whatever spacing attributes ``attrs`` give."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import (
        ComputedRadiographyImageStorage,
        DigitalXRayImageStorageForPresentation,
        ExplicitVRLittleEndian,
        generate_uid,
    )

    sop = ComputedRadiographyImageStorage if modality == "CR" else DigitalXRayImageStorageForPresentation
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("cr.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = modality, "LSPINE", "LL"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def _bytes(ds) -> bytes:
    import pydicom

    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture
def pixels():
    """A 12-bit radiograph-like image: a bright (dense) block on a graded background, rows ≠ columns."""
    rng = np.random.default_rng(3)
    img = np.tile(np.linspace(200, 1800, 72), (48, 1)) + rng.integers(0, 50, (48, 72))
    img[12:30, 20:40] = 3900
    return np.round(img).astype(np.uint16)


SPACINGS = [
    ({"PixelSpacing": [0.139, 0.143]}, (0.139, 0.143), "PixelSpacing"),
    ({"ImagerPixelSpacing": [0.15, 0.15], "EstimatedRadiographicMagnificationFactor": 1.2}, (0.125, 0.125),
     "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor 1.2"),
    ({"ImagerPixelSpacing": [0.2, 0.16]}, (0.2, 0.16), "ImagerPixelSpacing (detector plane, not corrected for magnification)"),
    ({"PixelSpacing": [0.1, 0.1], "ImagerPixelSpacing": [0.15, 0.15]}, (0.1, 0.1), "PixelSpacing"),
    ({}, None, "none"),
]


@pytest.mark.parametrize("attrs,spacing,source", SPACINGS)
@pytest.mark.parametrize("modality", ["CR", "DX"])
def test_projection_radiograph_reads_with_its_spacing(tmp_path, pixels, attrs, spacing, source, modality):
    path = tmp_path / "xray.dcm"
    path.write_bytes(_bytes(_radiograph(pixels, modality=modality, photometric="MONOCHROME2", **attrs)))
    vol = read_image(path)
    assert vol.shape == (72, 48, 1)  # [column, row, 0]
    np.testing.assert_array_equal(vol.array[:, :, 0].T, pixels)  # 12-bit values kept exactly, no windowing
    assert vol.meta["projection"] is True and vol.meta["patient_geometry"] is False
    assert vol.meta["spacing_source"] == source
    assert pixel_spacing(vol) == (pytest.approx(spacing) if spacing else None)
    assert vol.meta["spacing_known"] is (spacing is not None)


def test_monochrome1_is_inverted_within_its_bits_and_displayed_as_the_file_intends(tmp_path, pixels):
    ds = _radiograph(pixels, bits=12, photometric="MONOCHROME1", ImagerPixelSpacing=[0.1, 0.1],
                     WindowCenter=2048, WindowWidth=4096, VOILUTFunction="LINEAR_EXACT")
    vol = read_dicom_bytes(_bytes(ds), "cr.dcm")
    values = vol.array[:, :, 0].T
    np.testing.assert_array_equal(values, 4095.0 - pixels)  # bone (low stored values in MONOCHROME1) bright
    assert vol.meta["inverted_range"] == (0.0, 4095.0)
    shown = display_image(vol)
    # MONOCHROME1 shows a low stored value white: grey = 1 - window(stored) = the value's own position
    np.testing.assert_allclose(shown, 1.0 - (pixels / 4096.0), atol=1e-6)
    assert shown[20, 30] < 0.1  # the block (stored 3900) is dark on a MONOCHROME1 display


def test_voi_window_functions_follow_ps33():
    x = np.array([0.0, 1000.0, 1499.5, 2000.0, 3000.0])
    lin = voi_display(x, {"voi": {"kind": "window", "center": 1500.0, "width": 1000.0, "function": "LINEAR"}})
    # C.11.2.1.2.1: below c - 0.5 - (w-1)/2 → 0, above c - 0.5 + (w-1)/2 → 1, linear between
    np.testing.assert_allclose(lin, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-3)
    sig = voi_display(x, {"voi": {"kind": "window", "center": 1500.0, "width": 1000.0, "function": "SIGMOID"}})
    np.testing.assert_allclose(sig[2], 1 / (1 + np.exp(-4 * (1499.5 - 1500) / 1000)), rtol=1e-6)
    lut = voi_display(np.array([10.0, 12.0, 20.0]), {"voi": {"kind": "lut", "first": 10, "bits": 8,
                                                              "data": np.array([0.0, 51.0, 255.0])}})
    np.testing.assert_allclose(lut, [0.0, 1.0, 1.0])  # LUT entries past the end take the last value


def test_radiograph_without_spacing_measures_in_pixels_until_given_one(tmp_path, pixels):
    (tmp_path / "cr.dcm").write_bytes(_bytes(_radiograph(pixels)))
    vol = read_image(tmp_path / "cr.dcm")
    assert pixel_spacing(vol) is None
    body = lambda y: np.array([[0, y], [40, y], [40, y + 30], [0, y + 30]], float)  # noqa: E731
    corners = {"L4": body(0), "L5": body(40)}
    in_px = measure_lateral(corners, pixel_spacing(vol))
    assert in_px.length_unit == "px" and in_px.vertebrae["L4"]["anterior"] == pytest.approx(30.0)
    given = read_image(tmp_path / "cr.dcm", spacing=0.15)
    assert given.meta["spacing_source"] == "given by the user" and pixel_spacing(given) == (0.15, 0.15)
    in_mm = measure_lateral(corners, pixel_spacing(given))
    assert in_mm.length_unit == "mm" and in_mm.vertebrae["L4"]["anterior"] == pytest.approx(4.5)
    assert in_mm.slips["L4"]["slip_percent"] == pytest.approx(in_px.slips["L4"]["slip_percent"])  # a ratio
    # a spacing the file states is never overridden
    (tmp_path / "dx.dcm").write_bytes(_bytes(_radiograph(pixels, PixelSpacing=[0.1, 0.1])))
    with pytest.raises(LumbarLabError, match="states a pixel spacing"):
        read_image(tmp_path / "dx.dcm", spacing=0.2)
    assert read_image(tmp_path / "dx.dcm", spacing=0.1).spacing[:2] == (0.1, 0.1)


def test_png_radiograph_keeps_a_given_spacing_and_volumes_refuse_one(tmp_path):
    from lumbarlab.io import write_image, write_png
    from lumbarlab.volume import Volume

    write_png(np.tile(np.linspace(0, 1, 30), (20, 1)), tmp_path / "x.png")
    img = read_image(tmp_path / "x.png", spacing=(0.2, 0.1))
    assert img.spacing[:2] == (0.1, 0.2) and pixel_spacing(img) == (0.2, 0.1)
    write_image(Volume(np.zeros((4, 4, 4), np.int16), (1, 1, 1)), tmp_path / "v.nii.gz")
    with pytest.raises(LumbarLabError, match="carries its own voxel spacing"):
        read_image(tmp_path / "v.nii.gz", spacing=0.5)


# -- compressed transfer syntaxes -------------------------------------------------------------------
def _compressed(pixels: np.ndarray, syntax: str, bits: int):
    """The radiograph in ``syntax``: pydicom's encoders (RLE, JPEG-LS via pyjpegls, JPEG 2000 via
    pylibjpeg-openjpeg), Pillow for baseline JPEG, tests/jpeg_lossless.py for lossless JPEG."""
    from pydicom import uid
    from pydicom.encaps import encapsulate

    ds = _radiograph(pixels if bits > 8 else (pixels >> 4).astype(np.uint16), bits=bits,
                     photometric="MONOCHROME1", ImagerPixelSpacing=[0.15, 0.15])
    stored = ds.pixel_array.copy()
    if syntax in ("JPEGLosslessSV1", "JPEGLossless"):
        predictor = 1 if syntax == "JPEGLosslessSV1" else 6
        ds.PixelData = encapsulate([encode_jpeg_lossless(stored, bits, predictor)])
        ds.file_meta.TransferSyntaxUID = getattr(uid, syntax)
    elif syntax == "JPEGBaseline8Bit":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(stored.astype(np.uint8)).save(buf, format="JPEG", quality=95)
        ds.BitsAllocated = 8
        ds.PixelData = encapsulate([buf.getvalue()])
        ds.file_meta.TransferSyntaxUID = uid.JPEGBaseline8Bit
    elif syntax == "DeflatedExplicitVRLittleEndian":
        ds.file_meta.TransferSyntaxUID = uid.DeflatedExplicitVRLittleEndian
    else:
        kwargs = {"JPEGLSNearLossless": {"jls_error": 2}, "JPEG2000": {"j2k_cr": [8]}}.get(syntax, {})
        ds.compress(getattr(uid, syntax), **kwargs)
    return ds, stored


SYNTAXES = [  # (name, bits, largest allowed error in stored values)
    ("JPEGLosslessSV1", 12, 0), ("JPEGLosslessSV1", 16, 0), ("JPEGLossless", 12, 0), ("JPEGLSLossless", 12, 0),
    ("JPEGLSNearLossless", 12, 2), ("JPEG2000Lossless", 12, 0), ("JPEG2000Lossless", 16, 0), ("JPEG2000", 12, 80),
    ("RLELossless", 12, 0), ("JPEGBaseline8Bit", 8, 6), ("DeflatedExplicitVRLittleEndian", 12, 0),
]


@pytest.mark.parametrize("syntax,bits,tolerance", SYNTAXES, ids=[f"{s}-{b}bit" for s, b, _ in SYNTAXES])
def test_compressed_radiographs_decode(tmp_path, pixels, syntax, bits, tolerance):
    src = pixels if bits != 16 else (pixels.astype(np.uint32) * 16).astype(np.uint16)
    ds, stored = _compressed(src, syntax, bits)
    data = _bytes(ds)
    (tmp_path / "x.dcm").write_bytes(data)
    top = 2**bits - 1
    for vol in (read_image(tmp_path / "x.dcm"), read_dicom_bytes(data, "x.dcm")):
        got = vol.array[:, :, 0].T
        assert np.abs(got - (top - stored.astype(float))).max() <= tolerance, syntax  # MONOCHROME1 inverted
        assert pixel_spacing(vol) == (0.15, 0.15)
    upload = radiograph_from_bytes(data, "x.dcm")  # the dashboards' path, the same decoder
    # the block's high MONOCHROME1 values are shown dark (little attenuation); the model sees them dark too
    assert upload.shape == pixels.shape and upload[20, 30] < 0.1


def test_a_missing_decoder_names_what_to_install(tmp_path, pixels, monkeypatch):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLosslessSV1

    ds, _ = _compressed(pixels, "JPEGLosslessSV1", 12)
    (tmp_path / "x.dcm").write_bytes(_bytes(ds))
    decoder = get_decoder(JPEGLosslessSV1)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg>=2.0", "pylibjpeg-libjpeg>=2.1")})
    with pytest.raises(LumbarLabError, match="pip install pylibjpeg"):
        read_image(tmp_path / "x.dcm")


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter")
def test_unsupported_and_truncated_files_say_so(tmp_path, pixels):
    from pydicom.encaps import encapsulate

    ds = _radiograph(pixels)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: video, no image decoder
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
    (tmp_path / "v.dcm").write_bytes(_bytes(ds))
    with pytest.raises(LumbarLabError, match="cannot be decoded by pydicom"):
        read_image(tmp_path / "v.dcm")
    data = _bytes(_compressed(pixels, "JPEG2000Lossless", 12)[0])
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) - 300])
    with pytest.raises(LumbarLabError, match="cut.dcm"):
        read_image(tmp_path / "cut.dcm")


def test_secondary_capture_in_colour_becomes_grey(pixels):
    from pydicom.uid import SecondaryCaptureImageStorage

    ds = _radiograph(pixels, modality="OT")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    rgb = np.stack([pixels >> 4] * 3, axis=-1).astype(np.uint8)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = rgb.tobytes()
    vol = read_dicom_bytes(_bytes(ds))
    np.testing.assert_allclose(vol.array[:, :, 0].T, pixels >> 4, atol=0.01)
    assert vol.meta["projection"] is True and vol.meta["converted_from"] == "RGB"
