"""Small DICOM files written with pydicom for tests (no patient data: synthetic pixels only)."""

from __future__ import annotations

import io

import numpy as np


def dicom_bytes(pixels: np.ndarray, photometric: str = "MONOCHROME2", slope: float = 1.0, intercept: float = 0.0) -> bytes:
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def ct_series(folder, volume_hu: np.ndarray, spacing=(0.8, 0.7, 2.5), origin=(-100.0, -120.0, 30.0),
              slope: float = 1.0, intercept: float = -1024.0, shuffle: bool = True, series_uid: str | None = None,
              orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), patient_name: str = "Doe^Jane", modality: str = "CT",
              description: str = "", series_number: int | None = None, suffix: str = "", patient_id: str = "P-12345",
              study_uid: str | None = None, image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
              gaps: dict[int, float] | None = None, first_instance: int = 1):
    """Write ``volume_hu`` (rows, cols, slices) as an axial CT series of one file per slice, in LPS.

    Rows run along the column direction cosines, slices along the normal. Files are named in a
    shuffled order so readers must sort by position. Returns the list of paths.
    """
    from pathlib import Path

    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols, n = volume_hu.shape
    row_dir, col_dir = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row_dir, col_dir)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    offsets = np.cumsum([spacing[2] * (k > 0) + (gaps or {}).get(k, 0.0) for k in range(n)])  # mm along the normal
    order = np.random.default_rng(0).permutation(n) if shuffle else np.arange(n)
    paths = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(f"s{k}.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientID, ds.PatientBirthDate = modality, patient_name, patient_id, "19700101"
        ds.ImageType, ds.InstanceNumber = list(image_type), first_instance + k
        if description:
            ds.SeriesDescription = description
        if series_number is not None:
            ds.SeriesNumber = series_number
        ds.InstitutionName, ds.StudyInstanceUID, ds.SeriesInstanceUID = "General Hospital", study_uid, series_uid
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelSpacing = [spacing[1], spacing[0]]  # (between rows, between columns)
        ds.ImageOrientationPatient = list(orientation)
        ds.ImagePositionPatient = [float(v) for v in np.array(origin) + normal * offsets[k]]
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        stored = np.round((volume_hu[:, :, k] - intercept) / slope).astype(np.uint16)
        ds.PixelData = stored.tobytes()
        ds.add_new(0x00091001, "LO", "private vendor note")  # a private tag for de-identification tests
        path = folder / f"IM{first_instance + order[k]:04d}{suffix}"
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
        paths.append(path)
    return paths
