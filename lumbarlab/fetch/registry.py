"""The public lumbar spine datasets lumbarlab knows, in one place.

Per dataset: modality, task, homepage, download files (URL, size, hash where the host publishes one),
licence, citation, and whether it downloads directly or needs a manual step (registration, a
licence agreement, a Kaggle account). Sizes are approximate (for the ``--list`` table and a disk
check); a file without a registry hash is checked against the sha256 recorded on its first download
(``index.json`` keeps it), and the note tells you to pin it here.

Sources: the survey's Table 3 and the datasets that followed it (SPIDER 2024, TotalSegmentator v2,
RSNA 2024).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Dataset", "RemoteFile", "DATASETS", "get"]


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: ``url`` relative to the dataset's ``base_url`` (so a mirror can replace it)."""

    path: str
    size_bytes: int | None = None
    hash: str | None = None  # "md5:…" or "sha256:…", as the host publishes it
    hash_source: str = ""


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    modality: str
    task: str
    homepage: str
    license: str
    citation: str
    base_url: str = ""
    files: tuple[RemoteFile, ...] = ()
    manual: str = ""  # non-empty: the steps a user must take; the download is not automatic
    converter: str = ""  # name in lumbarlab.fetch.convert.CONVERTERS
    notes: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def direct(self) -> bool:
        return not self.manual and bool(self.files)

    @property
    def size_bytes(self) -> int | None:
        sizes = [f.size_bytes for f in self.files]
        return sum(sizes) if sizes and all(s is not None for s in sizes) else None


_GB = 1_000_000_000
# Where a registry hash comes from. None was read off a host's page by us (no internet here); each is the
# host's published checksum or a hash computed by a maintained library, as quoted in public code:
_TORCH_EM = "sha256 computed by the torch_em library's SPIDER loader (Zenodo itself publishes md5 per file)"
_ZENODO_QUOTED = ("Zenodo's md5 and byte size of record 10047292, as quoted by two independent public download "
                  "scripts")

DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset(
        "spider", "SPIDER: lumbar spine segmentation in MR images", "MRI (sagittal T1, T2, T2-SPACE)",
        "segmentation (vertebrae, discs, canal) + radiological gradings",
        "https://zenodo.org/records/10159290", "CC BY 4.0",
        "van der Graaf JW et al. Lumbar spine segmentation in MR images: a dataset and a public benchmark. "
        "Sci Data 11, 264 (2024).",
        base_url="https://zenodo.org/records/10159290/files/",
        files=(RemoteFile("images.zip", int(3.9 * _GB),
                          "sha256:a54cba2905284ff6cc9999f1dd0e4d871c8487187db7cd4b068484eac2f50f17", _TORCH_EM),
               RemoteFile("masks.zip", int(0.08 * _GB),
                          "sha256:13a6e25a8c0d74f507e16ebb2edafc277ceeaf2598474f1fed24fdf59cb7f18f", _TORCH_EM),
               RemoteFile("overview.csv", 60_000), RemoteFile("radiological_gradings.csv", 60_000)),
        converter="spider",
        notes="Masks number vertebrae from the bottom (L5 = 1, partly visible vertebrae 101–125; no sacrum label), "
              "the canal 100 and discs from 201 (L5/S1); values without a lumbarlab label are listed per case. Zenodo publishes an md5 per file on the record page; the CSVs are unpinned "
              "(their sha256 is recorded on first download).",
    ),
    Dataset(
        "verse19", "VerSe 2019: vertebra labelling and segmentation in CT", "CT", "segmentation, centroids",
        "https://github.com/anjany/verse", "CC BY-SA 4.0",
        "Sekuboyina A et al. VerSe: a vertebrae labelling and segmentation benchmark for multi-detector CT "
        "images. Med Image Anal 73, 102166 (2021).",
        base_url="https://s3.bonescreen.de/public/VerSe-complete/",
        files=(RemoteFile("dataset-verse19training.zip"), RemoteFile("dataset-verse19validation.zip"),
               RemoteFile("dataset-verse19test.zip")),
        converter="verse",
        notes="BIDS-like: rawdata/sub-*/…_ct.nii.gz, derivatives/sub-*/…_seg-vert_msk.nii.gz and …_ctd.json. "
              "Labels 1–7 C1–C7, 8–19 T1–T12, 20–24 L1–L5, 25 L6, 26 sacrum, 28 T13.",
    ),
    Dataset(
        "verse20", "VerSe 2020: vertebra labelling and segmentation in CT", "CT", "segmentation, centroids",
        "https://github.com/anjany/verse", "CC BY-SA 4.0",
        "Löffler MT et al. A vertebral segmentation dataset with fracture grading. Radiol Artif Intell 2, "
        "e190138 (2020); Sekuboyina A et al., Med Image Anal 2021.",
        base_url="https://s3.bonescreen.de/public/VerSe-complete/",
        files=(RemoteFile("dataset-01training.zip"), RemoteFile("dataset-02validation.zip"),
               RemoteFile("dataset-03test.zip")),
        converter="verse",
        notes="Same layout and labels as VerSe 2019.",
    ),
    Dataset(
        "totalsegmentator", "TotalSegmentator CT dataset v2", "CT", "segmentation (117 structures incl. L1–L5, sacrum)",
        "https://zenodo.org/records/10047292", "CC BY 4.0",
        "Wasserthal J et al. TotalSegmentator: robust segmentation of 104 anatomic structures in CT images. "
        "Radiol Artif Intell 5, e230024 (2023).",
        base_url="https://zenodo.org/records/10047292/files/",
        files=(RemoteFile("Totalsegmentator_dataset_v201.zip", 23_581_218_285, "md5:fe250e5718e0a3b5df4c4ea9d58a62fe",
                          _ZENODO_QUOTED),),
        converter="totalsegmentator",
        notes="One folder per case (s0000/ct.nii.gz, s0000/segmentations/vertebrae_L1.nii.gz, …, sacrum.nii.gz) "
              "and meta.csv.",
    ),
    Dataset(
        "totalsegmentator-small", "TotalSegmentator CT dataset v2, small subset", "CT", "segmentation",
        "https://zenodo.org/records/10047263", "CC BY 4.0",
        "Wasserthal J et al., Radiol Artif Intell 5, e230024 (2023).",
        base_url="https://zenodo.org/records/10047263/files/",
        files=(RemoteFile("Totalsegmentator_dataset_small_v201.zip", int(3.2 * _GB), "md5:6b5524af4b15e6ba06ef2d700c0c73e0",
                          "Zenodo's md5 of record 10047263 as quoted by one public download script; not yet confirmed "
                          "against the record page"),),
        converter="totalsegmentator",
        notes="The same layout as the full set, fewer cases.",
    ),
    Dataset(
        "lumbar-spine-mri", "Lumbar Spine MRI Dataset (Sudirman et al., Mendeley Data)", "MRI (T1/T2, sagittal + axial DICOM)",
        "classification / segmentation (composite labels of the lowest three discs)",
        "https://data.mendeley.com/datasets/k57fr854j2/2", "CC BY 4.0",
        "Sudirman S et al. Lumbar Spine MRI Dataset. Mendeley Data, v2 (2019), doi:10.17632/k57fr854j2.2.",
        manual="Download the archive from https://data.mendeley.com/datasets/k57fr854j2/2 (Download All) and, for the "
               "radiologists' notes, `Radiologists Report.xlsx` from https://data.mendeley.com/datasets/s6bgczr8s2 "
               "into the same folder; then run `lumbarlab fetch lumbar-spine-mri --from PATH/TO/ARCHIVE_OR_FOLDER`.",
        converter="dicom-studies",
        notes="515 patients; the survey's most used dataset (Table 3). 01_MRI_Data/<patient 0001…0515>/…/*.ima "
              "(Siemens DICOM): localizer, sagittal T1 and T2, axial T1 and T2 of the lowest three discs; axial slices "
              "come in blocks angled to each disc, so each block becomes its own volume. The notes are one free-text "
              "report per patient (columns 'Patient ID', 'Clinician's Notes'), kept as they are.",
    ),
    Dataset(
        "buu-lspine", "BUU-LSPINE: lumbar spine X-ray with vertebral corners", "X-ray (AP and lateral)",
        "landmarks (corners), spondylolisthesis",
        "https://services.informatics.buu.ac.th/spine/", "research use, registration required",
        "Klinwichit P et al. BUU-LSPINE: a thai open lumbar spine dataset for spondylolisthesis detection. "
        "Appl Sci 13, 8646 (2023).",
        manual="Register and download at https://services.informatics.buu.ac.th/spine/ , then run "
               "`lumbarlab fetch buu-lspine --from PATH/TO/ARCHIVE_OR_FOLDER`.",
        converter="buu",
        notes="Baselines: mean corner error 4.63 mm (AP) and 4.91 mm (lateral). Release layout: AP/<case>.jpg and "
              "LA/<case>.jpg, each with a header-less <case>.csv of x1,y1,x2,y2 per endplate, top to bottom (lateral: "
              "L1–L5 superior and inferior, then S1 superior; AP: L1–L5). The anterior point of each lateral row is "
              "found per image from the S1 endplate (the promontory lies lower). lumbarlab's own corner CSVs are "
              "read too.",
    ),
    Dataset(
        "rsna2024", "RSNA 2024 Lumbar Spine Degenerative Classification", "MRI (DICOM: sagittal T1, T2/STIR, axial T2)",
        "classification (severity per condition and level) + coordinates",
        "https://www.kaggle.com/competitions/rsna-2024-lumbar-spine-degenerative-classification",
        "Kaggle competition rules (non-commercial research)",
        "Richards T et al. The RSNA Lumbar Degenerative Imaging Spine Classification (LumbarDISC) dataset. "
        "Radiology: AI (2025).",
        manual="Accept the competition rules on Kaggle, then `kaggle competitions download -c "
               "rsna-2024-lumbar-spine-degenerative-classification` and run `lumbarlab fetch rsna2024 --from FILE.zip`.",
        converter="rsna",
        notes="train.csv: one column per condition and level (Normal/Mild, Moderate, Severe); "
              "train_label_coordinates.csv: study, series, instance, condition, level, x, y. Axial series often "
              "hold several angled stacks: each becomes its own volume, listing its instances in slice order.",
    ),
    Dataset(
        "ctspine1k", "CTSpine1K", "CT", "segmentation (vertebrae)",
        "https://github.com/MIRACLE-Center/CTSpine1K", "CC BY-NC-SA 4.0",
        "Deng Y et al. CTSpine1K: a large-scale dataset for spinal vertebrae segmentation in computed "
        "tomography. arXiv:2105.14711 (2021).",
        manual="Follow the download links of https://github.com/MIRACLE-Center/CTSpine1K (HuggingFace / cloud "
               "drives, or the Hugging Face mirror alexanderdann/CTSpine1K), then `lumbarlab fetch ctspine1k --from PATH`.",
        converter="ctspine1k",
        notes="volumes/<subset>/<case>.nii.gz with labels/<subset>/<case>_seg.nii.gz (subsets COLONOG, HNSCC-3DCT-RT, "
              "MSD T10 liver, COVID-19); vertebrae labelled as in VerSe (20–24 L1–L5, 25 L6; all visible vertebrae "
              "annotated), so the values are kept.",
    ),
    Dataset(
        "aasce2019", "AASCE 2019: accurate automated spinal curvature estimation", "X-ray (AP)",
        "landmarks (68 corners T1–L5), Cobb angles",
        "https://aasce19.github.io/", "research use, SpineWeb registration",
        "Wang L et al. Evaluation and comparison of accurate automated spinal curvature estimation algorithms "
        "with spinal anterior-posterior X-ray images: the AASCE2019 challenge. Med Image Anal 72, 102115 (2021).",
        manual="Request dataset 16 on SpineWeb (http://spineweb.digitalimaginggroup.ca/), then "
               "`lumbarlab fetch aasce2019 --from PATH`.",
        converter="aasce",
        notes="boostnet_labeldata: data/{training,test}/*.jpg, labels/…/*.jpg.mat (p2: 68 corners, four per vertebra T1–L5, ordered here by geometry), "
              "filenames.csv + angles.csv. Scored with SMAPE on the three Cobb angles (lumbarlab.metrics.smape).",
    ),
)}


def get(name: str) -> Dataset:
    from lumbarlab.errors import LumbarLabError

    key = name.lower()
    if key not in DATASETS:
        raise LumbarLabError(f"no dataset {name!r}; `lumbarlab fetch --list` shows {', '.join(DATASETS)}.")
    return DATASETS[key]
