"""3D datasets for any modality: image + label volumes from the phantom or a converted dataset, and random
patches of them for training 3D networks on a CPU.

Items are ``(image (1, X, Y, Z) float32, labels (X, Y, Z) int64)`` in lumbarlab's (VerSe) label values,
volumes reoriented to RAS+ so every case looks the same way; :meth:`VolumeDataset.volume` gives the
:class:`~lumbarlab.volume.Volume` pair with its geometry. Intensities go through the dataset's ``normalize``
(:func:`lumbarlab.datasets.ct.normalize_ct`, :func:`lumbarlab.datasets.mri.normalize_mri`).

Example:
    >>> data = VolumeDataset(phantom_volumes(2, seed=0, modality="ct", shape=(48, 48, 64), spacing=2.5))
    >>> image, labels = data[0]
    >>> tuple(image.shape), tuple(labels.shape), int(labels.max())
    ((1, 48, 48, 64), (48, 48, 64), 200)
    >>> patch, patch_labels = PatchDataset(data, patch=(32, 32, 32), per_volume=2, seed=0)[3]
    >>> tuple(patch.shape), bool((patch_labels > 0).any())
    ((1, 32, 32, 32), True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume, to_canonical

__all__ = ["VolumePair", "VolumeDataset", "PatchDataset", "FetchedVolumes", "phantom_volumes"]


@dataclass
class VolumePair:
    """One case: its image and label map on the same grid, and where it came from."""

    image: Volume
    labels: Volume
    case_id: str = ""

    def __iter__(self):  # ``image, labels = pair``
        return iter((self.image, self.labels))


def phantom_volumes(n: int, seed: int = 0, modality: str = "ct", shape: tuple[int, int, int] = (96, 96, 120),
                    spacing: float | tuple[float, float, float] = 1.5, **pathology) -> list[VolumePair]:
    """``n`` phantom cases (anatomy seeds ``seed …``) as (image, labels) pairs: ``modality`` "ct", "t1" or
    "t2"; ``pathology`` as :func:`lumbarlab.phantom.make_case` takes it (the same for every case)."""
    from lumbarlab.phantom import make_case

    modality = modality.lower()
    if modality not in ("ct", "t1", "t2"):
        raise LumbarLabError(f"modality must be 'ct', 't1' or 't2', got {modality!r}.")
    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    out = []
    for k in range(n):
        case = make_case(seed + k, shape=shape, spacing=spacing, modalities=(modality,), **pathology)
        out.append(VolumePair(case.volume(modality), case.labels, f"phantom{seed + k:04d}"))
    return out


class VolumeDataset(torch.utils.data.Dataset):
    """A list of :class:`VolumePair` (or a callable that loads pair ``i``) as a torch Dataset.

    Args:
        pairs: the cases, or (``loader``, count).
        normalize: image values → network input (default: as they are).
        canonical: reorient to RAS+ first.
        classes: label values that become targets 1, 2, … in this order (anything else 0); default: the
            label values as they are.
    """

    def __init__(self, pairs: Sequence[VolumePair] | tuple[Callable[[int], VolumePair], int],
                 normalize: Callable[[np.ndarray], np.ndarray] | None = None, canonical: bool = True,
                 classes: Sequence[int] | None = None):
        if isinstance(pairs, tuple) and len(pairs) == 2 and callable(pairs[0]):
            self._load, self._count = pairs
        else:
            items = list(pairs)
            if not items:
                raise LumbarLabError("a VolumeDataset needs at least one case.")
            self._load, self._count = items.__getitem__, len(items)
        self.normalize, self.canonical = normalize, canonical
        self.classes = tuple(int(c) for c in classes) if classes else None

    def __len__(self) -> int:
        return self._count

    def volume(self, i: int) -> VolumePair:
        """Case ``i`` with its geometry (RAS+ when ``canonical``)."""
        pair = self._load(i)
        if pair.image.shape != pair.labels.shape:
            raise LumbarLabError(f"case {pair.case_id or i}: image {pair.image.shape} and labels {pair.labels.shape} "
                                 "are not on one grid.")
        if self.canonical:
            pair = VolumePair(to_canonical(pair.image), to_canonical(pair.labels), pair.case_id)
        return pair

    def __getitem__(self, i: int):
        pair = self.volume(i)
        image = np.asarray(pair.image.array, dtype=np.float32)
        if self.normalize is not None:
            image = np.asarray(self.normalize(image), dtype=np.float32)
        labels = np.asarray(pair.labels.array).astype(np.int64)
        if self.classes is not None:
            lut = np.zeros(max(int(labels.max(initial=0)), max(self.classes)) + 1, np.int64)
            lut[list(self.classes)] = np.arange(1, len(self.classes) + 1)
            labels = lut[labels]
        return torch.from_numpy(np.ascontiguousarray(image))[None], torch.from_numpy(labels)


class PatchDataset(torch.utils.data.Dataset):
    """Random 3D patches of a :class:`VolumeDataset`, centred on labelled voxels with probability
    ``positive`` (MONAI's ``RandCropByPosNegLabel``), for training 3D networks on a CPU: ``per_volume`` patches
    per case, volumes read once and kept (``cache``). Item ``i`` is reproducible from ``seed`` and ``i``.

    Args:
        fresh: draw a new crop on every call (a training set then shows new patches each epoch) from one random
            stream seeded by ``seed``: the same sequence of calls gives the same patches.
        augment: ``(image, labels) → (image, labels)`` applied to each patch (e.g.
            :func:`lumbarlab.datasets.ct.ct_augment`).
    """

    def __init__(self, volumes: VolumeDataset, patch: tuple[int, int, int] = (64, 64, 64), per_volume: int = 4,
                 positive: float = 0.8, seed: int = 0, cache: bool = True, fresh: bool = False,
                 augment: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None):
        if not 0.0 <= positive <= 1.0:
            raise LumbarLabError(f"positive must be a share in [0, 1], got {positive}.")
        self.volumes, self.patch, self.per_volume = volumes, tuple(int(p) for p in patch), int(per_volume)
        self.positive, self.seed, self.cache = float(positive), int(seed), cache
        self.fresh, self.augment = fresh, augment
        self._stream = np.random.default_rng([int(seed), 0xF4E5])
        self._cached: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.volumes) * self.per_volume

    def _case(self, k: int):
        if k not in self._cached:
            item = self.volumes[k]
            if not self.cache:
                return item
            self._cached[k] = item
        return self._cached[k]

    def __getitem__(self, i: int):
        from monai.transforms import RandCropByPosNegLabel, SpatialPad

        image, labels = self._case(i // self.per_volume)
        pad = SpatialPad(self.patch)  # a patch larger than the volume pads it, as MONAI's pipelines do
        image, labels = pad(image), pad(labels[None])
        crop = RandCropByPosNegLabel(self.patch, pos=self.positive, neg=1.0 - self.positive, num_samples=1,
                                     allow_smaller=True)
        crop.set_random_state(seed=int(self._stream.integers(2**31)) if self.fresh else self.seed * 1_000_003 + i)
        # one crop of image and labels stacked: one search for the centres, the same box for both
        both = np.asarray(crop(torch.cat([torch.as_tensor(image), torch.as_tensor(labels).float()]), label=labels)[0])
        out = (torch.as_tensor(both[:1], dtype=torch.float32), torch.as_tensor(np.rint(both[1]), dtype=torch.int64))
        return self.augment(*out) if self.augment is not None else out


class FetchedVolumes(VolumeDataset):
    """3D images and label maps of a converted dataset (VerSe, SPIDER, TotalSegmentator, CTSpine1K, or phantom
    cases written by ``lumbarlab phantom`` and converted with ``lumbarlab fetch verse19 --from``), as a
    :class:`VolumeDataset`. Only cases with a label map are listed.
    """

    def __init__(self, root, canonical: bool = True, normalize: Callable[[np.ndarray], np.ndarray] | None = None,
                 classes: Sequence[int] | None = None):
        from lumbarlab.fetch.layout import read_index

        self.index = read_index(root)
        self.root, self.name = self.index.root, self.index.dataset
        self.cases = [c for c in self.index.cases if c.label]
        if not self.cases:
            raise LumbarLabError(f"{root}: the index lists no case with a label map.")
        super().__init__((self._read, len(self.cases)), normalize=normalize, canonical=canonical, classes=classes)

    def _read(self, i: int) -> VolumePair:
        from lumbarlab.io import read_image

        case = self.cases[i]
        return VolumePair(read_image(self.index.path(case.image)), read_image(self.index.path(case.label)), case.id)
