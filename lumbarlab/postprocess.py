"""Clean a predicted multi-label vertebra map: drop specks, give stray pieces to the vertebra they touch, and
name the vertebrae in anatomical order.

A 3D network that sees a 10 cm patch can tell a vertebra from its surroundings but not always *which*
vertebra it is: L2, L3 and L4 look alike, and only the sacrum (below) or the last rib (above) says where the
count starts. Its typical mistakes are (1) specks of a label far from where that label lies, (2) one vertebra
painted in two neighbouring labels, and (3) two vertebrae swapped or given the same label. The steps below
undo these, the post-processing the VerSe challenge entries used (Sekuboyina et al., Med Image Anal 2021,
sections 4–5: connected components, then a consistent top-to-bottom labelling):

1. each label's connected components (6-connectivity, so that neighbours touching at a facet stay apart);
   pieces under ``min_volume_mm3`` are given to the label they share most faces with, or to background;
2. the remaining pieces are *instances*; small ones far from the spine's axis (a rib, bowel) are dropped, and
   two whose centres lie less than ``merge_mm`` apart along the body axis (and within 50 mm across it) are parts
   of one vertebra (a body and its arch, two transverse processes) and merge;
3. instances are sorted from head to feet by their world z (RAS+: +z superior) and named with consecutive
   labels of ``order`` — the run of names that agrees with the most of the network's voxels (a vote), so the
   network says where the count starts and the geometry says that names follow one another;
4. each name keeps its largest piece and the pieces within 10 mm of it (:func:`keep_near_largest`).

Example:
    >>> import numpy as np
    >>> from lumbarlab.volume import Volume
    >>> a = np.zeros((8, 8, 40), np.uint8)                     # four boxes along z (+z: the head)
    >>> for z, value in ((32, 21), (22, 23), (12, 22), (2, 24)):  # L2, L4, L3, L5: L3 and L4 swapped
    ...     a[2:6, 2:6, z:z + 6] = value
    >>> clean = clean_vertebra_labels(Volume(a, (2.0, 2.0, 2.0)), (19, 20, 21, 22, 23, 24, 26), min_volume_mm3=100)
    >>> [int(clean.array[3, 3, z]) for z in (35, 25, 15, 5)]  # named top to bottom
    [21, 22, 23, 24]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume

__all__ = ["Instance", "vertebra_instances", "name_in_order", "keep_near_largest", "clean_vertebra_labels",
           "heatmap_centroids", "chain_centroids"]

_FACES = ndimage.generate_binary_structure(3, 1)


@dataclass
class Instance:
    """One vertebra candidate: its voxels (a boolean mask's flat indices), the network's votes (label → voxel
    count) and its centre in world mm."""

    index: np.ndarray
    votes: dict[int, int] = field(default_factory=dict)
    centre_mm: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def size(self) -> int:
        return int(sum(self.votes.values()))


def _speck_labels(specks: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """For every connected speck (boolean ``specks``), the kept label it shares most faces with (0 when it
    touches none), painted over the speck — all specks at once: an untrained or confused network leaves
    thousands, too many to visit one by one."""
    comp, n = ndimage.label(specks, _FACES)
    out = np.zeros(kept.shape, kept.dtype)
    if n == 0:
        return out
    pairs = []
    for axis in range(3):
        for step in (1, -1):
            near = np.roll(kept, step, axis=axis)
            edge = [slice(None)] * 3
            edge[axis] = 0 if step == 1 else -1  # np.roll wraps around: the far face is no neighbour
            near[tuple(edge)] = 0
            hit = (comp > 0) & (near > 0)
            pairs.append(comp[hit].astype(np.int64) * 65536 + near[hit].astype(np.int64))
    keys, counts = np.unique(np.concatenate(pairs), return_counts=True)
    best = np.zeros(n + 1, np.int64)
    best_count = np.zeros(n + 1, np.int64)
    for key, count in zip(keys, counts, strict=True):  # one row per (speck, neighbour label): few
        c, v = divmod(int(key), 65536)
        if count > best_count[c]:
            best[c], best_count[c] = v, count
    return best[comp].astype(kept.dtype)


def vertebra_instances(labels: Volume, values: Sequence[int], min_volume_mm3: float = 1000.0,
                       merge_mm: float = 12.0) -> tuple[np.ndarray, list[Instance]]:
    """Steps 1 and 2: the label array with specks reassigned, and its vertebra instances.

    Args:
        labels: a predicted label map (any orientation); values outside ``values`` are left alone.
        values: the vertebra labels to clean (VerSe values, e.g. 19–24 and 26).
        min_volume_mm3: pieces smaller than this are specks (1000 mm³ = 1 cm³, about 2 % of a lumbar vertebra).
        merge_mm: instances closer than this along world z are one vertebra (a lumbar body is 25–30 mm tall and
            a disc 8–12 mm, so two neighbours' centres lie ≥ 30 mm apart).

    Returns:
        (the cleaned array, the instances).
    """
    array = np.array(labels.array, copy=True)
    voxel_mm3 = float(np.prod(labels.spacing))
    min_voxels = max(int(round(min_volume_mm3 / voxel_mm3)), 1)
    pieces: list[np.ndarray] = []  # flat indices of each large piece
    kept = np.zeros(array.shape, array.dtype)
    for value in values:
        comp, n = ndimage.label(array == value, _FACES)
        if n == 0:
            continue
        sizes = np.bincount(comp.ravel())[1:]
        for k in np.flatnonzero(sizes >= min_voxels):
            idx = np.flatnonzero(comp == k + 1)
            pieces.append(idx)
            kept.ravel()[idx] = value
    specks = np.isin(array, values) & (kept == 0)
    array[specks] = _speck_labels(specks, kept)[specks]
    instances = []
    is_vertebra = np.isin(array, values).ravel()
    for idx in pieces:
        idx = idx[is_vertebra[idx]]  # a speck given to a neighbour may have changed it
        if idx.size == 0:
            continue
        vals, counts = np.unique(array.ravel()[idx], return_counts=True)
        centre = labels.index_to_world(np.array(np.unravel_index(idx, array.shape)).mean(axis=1))
        instances.append(Instance(idx, {int(v): int(c) for v, c in zip(vals, counts, strict=True)}, centre))
    return array, _merge_pieces(_drop_strays(array, instances), merge_mm)


def _merge_pieces(instances: list[Instance], merge_mm: float, axial_mm: float = 50.0) -> list[Instance]:
    """Merge instances that are parts of one vertebra: centres within ``merge_mm`` along world z and within
    ``axial_mm`` across it (a body and its arch, two transverse processes; not a rib beside the next vertebra)."""
    instances = list(instances)
    merged = True
    while merged:
        merged = False
        for i in range(len(instances)):
            for j in range(i + 1, len(instances)):
                a, b = instances[i], instances[j]
                if abs(a.centre_mm[2] - b.centre_mm[2]) >= merge_mm or \
                        np.linalg.norm(a.centre_mm[:2] - b.centre_mm[:2]) >= axial_mm:
                    continue
                instances[i] = _joined(a, b)
                del instances[j]
                merged = True
                break
            if merged:
                break
    return instances


def _joined(a: Instance, b: Instance) -> Instance:
    votes = dict(a.votes)
    for v, c in b.votes.items():
        votes[v] = votes.get(v, 0) + c
    centre = (a.centre_mm * a.size + b.centre_mm * b.size) / (a.size + b.size)
    return Instance(np.concatenate([a.index, b.index]), votes, centre)


def _drop_strays(array: np.ndarray, instances: list[Instance], axial_mm: float = 45.0) -> list[Instance]:
    """Remove (set to background) instances far from the spine's axis and small: a rib or a loop of bowel the
    network called a vertebra. The axis is the size-weighted median of the instances' centres in x and y; a stray
    lies more than ``axial_mm`` from it (a vertebra's centre lies on it within a scoliosis' sway) and holds less
    than half the median instance's voxels."""
    if len(instances) < 3:
        return instances
    centres = np.array([inst.centre_mm[:2] for inst in instances])
    sizes = np.array([inst.size for inst in instances], float)
    axis = np.array([np.median(np.repeat(centres[:, k], np.maximum(sizes / sizes.min(), 1).astype(int)))
                     for k in range(2)])
    keep = []
    for inst, c, n in zip(instances, centres, sizes, strict=True):
        if np.linalg.norm(c - axis) > axial_mm and n < 0.5 * np.median(sizes):
            array.ravel()[inst.index] = 0
        else:
            keep.append(inst)
    return keep


def keep_near_largest(labels: np.ndarray, spacing: Sequence[float], values: Sequence[int],
                      reach_mm: float = 10.0) -> np.ndarray:
    """Step 4: for each label, its largest connected component and any other piece within ``reach_mm`` of it
    (a transverse process the network cut off); pieces farther away — which would each add a distant surface
    to HD95 — become background.

    Example:
        >>> a = np.zeros((30, 10, 10), np.uint8); a[2:8, 2:8, 2:8] = 20; a[24:27, 2:5, 2:5] = 20
        >>> int((keep_near_largest(a, (2.0, 2.0, 2.0), [20]) == 20).sum())   # the far piece is gone
        216
    """
    out = np.array(labels, copy=True)
    for value in values:
        comp, n = ndimage.label(out == value, _FACES)
        if n < 2:
            continue
        sizes = np.bincount(comp.ravel())[1:]
        main = comp == int(np.argmax(sizes)) + 1
        reach = ndimage.distance_transform_edt(~main, sampling=spacing) <= reach_mm
        near = np.unique(comp[reach & (comp > 0)])
        out[(comp > 0) & ~np.isin(comp, near)] = 0
    return out


def name_in_order(instances: Sequence[Instance], order: Sequence[int]) -> list[int]:
    """Step 3: one label per instance, head to feet, consecutive in ``order`` (top to bottom), the run that
    agrees with the most voxels of the network. More instances than names keep their own best votes.

    Example:
        >>> a = Instance(np.arange(3), {21: 90, 22: 10}, np.array([0, 0, 40.0]))
        >>> b = Instance(np.arange(3), {21: 60, 22: 40}, np.array([0, 0, 10.0]))   # called L2 too, but lies below
        >>> name_in_order([b, a], order=(20, 21, 22, 23))
        [22, 21]
    """
    if not instances:
        return []
    order = list(order)
    top_down = sorted(range(len(instances)), key=lambda i: -float(instances[i].centre_mm[2]))
    n = len(top_down)
    if n > len(order):  # cannot all be named in sequence: each keeps its majority vote
        return [max(inst.votes, key=inst.votes.get) for inst in instances]
    # (clean_vertebra_labels merges the smallest instances first, so this happens only when called directly)
    best, best_start = -1, 0
    for start in range(len(order) - n + 1):
        agree = sum(instances[i].votes.get(order[start + k], 0) for k, i in enumerate(top_down))
        if agree > best:
            best, best_start = agree, start
    names = [0] * n
    for k, i in enumerate(top_down):
        names[i] = order[best_start + k]
    return names


def clean_vertebra_labels(labels: Volume, order: Sequence[int], min_volume_mm3: float = 1000.0,
                          merge_mm: float = 12.0) -> Volume:
    """Steps 1–4 on a predicted label map: specks reassigned, pieces of one vertebra merged, vertebrae named
    top to bottom with consecutive labels of ``order`` (head to feet, e.g. ``(19, 20, 21, 22, 23, 24, 26)``
    for T12, L1–L5, sacrum). Other labels (discs, canal) are kept. The result is on the input's grid.

    Args:
        labels: the network's label map (any orientation and spacing; world z must point to the head).
        order: vertebra label values from top to bottom.
        min_volume_mm3, merge_mm: see :func:`vertebra_instances`.
    """
    if len(set(order)) != len(order):
        raise LumbarLabError(f"order must name each label once, got {tuple(order)}.")
    array, instances = vertebra_instances(labels, order, min_volume_mm3, merge_mm)
    while len(instances) > len(order):  # more pieces than names: the smallest joins its nearest neighbour in z
        k = int(np.argmin([inst.size for inst in instances]))
        small = instances.pop(k)
        j = int(np.argmin([abs(inst.centre_mm[2] - small.centre_mm[2]) for inst in instances]))
        instances[j] = _joined(instances[j], small)
    out = array.copy()
    flat = out.reshape(-1)
    for inst, name in zip(instances, name_in_order(instances, order), strict=True):
        flat[inst.index] = name
    return labels.with_array(keep_near_largest(out, labels.spacing, order))


def _weighted_peak(heatmap: np.ndarray, peak: tuple[int, ...]) -> np.ndarray:
    """The probability-weighted mean voxel index of the 3 × 3 × 3 neighbourhood of ``peak`` (sub-voxel)."""
    box = tuple(slice(max(p - 1, 0), p + 2) for p in peak)
    weights = heatmap[box]
    idx = np.stack(np.meshgrid(*[np.arange(b.start, b.start + n) for b, n in zip(box, weights.shape, strict=True)],
                               indexing="ij"), -1)
    return (idx * weights[..., None]).sum(axis=(0, 1, 2)) / weights.sum()


def heatmap_centroids(probabilities: np.ndarray, grid: Volume, values: Sequence[int],
                      threshold: float = 0.3) -> dict[int, np.ndarray]:
    """Vertebra centroids (world mm) from a localisation network's heatmaps: per channel, the voxel of highest
    probability if it reaches ``threshold`` (else the vertebra is absent), refined to a sub-voxel position by
    the probability-weighted mean of its 3 × 3 × 3 neighbourhood.

    Args:
        probabilities: (C, X, Y, Z) sigmoid outputs on ``grid``, channel k for label value ``values[k]``.

    Example:
        >>> p = np.zeros((2, 9, 9, 9), np.float32); p[0, 4, 4, 4] = 0.9; p[0, 4, 4, 5] = 0.9
        >>> out = heatmap_centroids(p, Volume(np.zeros((9, 9, 9), np.uint8), (4.0, 4.0, 4.0)), (20, 21))
        >>> {v: c.tolist() for v, c in out.items()}    # between the two voxels; 21 is absent
        {20: [16.0, 16.0, 18.0]}
    """
    if probabilities.shape[1:] != grid.shape or len(probabilities) != len(values):
        raise LumbarLabError(f"heatmaps {probabilities.shape} do not match {len(values)} values on a grid of "
                             f"{grid.shape}.")
    out = {}
    for channel, value in zip(probabilities, values, strict=True):
        peak = np.unravel_index(int(np.argmax(channel)), channel.shape)
        if channel[peak] < threshold:
            continue
        out[int(value)] = grid.index_to_world(_weighted_peak(channel, peak))
    return out


def chain_centroids(probabilities: np.ndarray, grid: Volume, values: Sequence[int], threshold: float = 0.2,
                    min_distance_mm: float = 15.0) -> dict[int, np.ndarray]:
    """Vertebra centroids (world mm) named as a chain: find where *any* channel peaks, then name those places with
    consecutive labels of ``values`` (head to feet) by the run that agrees best with the heatmaps.

    A heatmap network sees one vertebra well and counts badly: L1's channel may peak on T12 or L2 while no channel
    is highest on the vertebra in between. The places are more reliable than the names, so (1) candidates are the
    local maxima of the channels' maximum (a cube of ``min_distance_mm``) above ``threshold``, a weaker one dropped
    within ``min_distance_mm`` of a stronger; (2) sorted from head to feet (world z, RAS+), candidate ``i`` gets
    ``values[o + i]`` for the offset ``o`` that maximises the summed probability of those channels at those places
    (Σᵢ p_{o+i}(xᵢ)) — the labelling step of VerSe's entries, which let the spine's order fix single channels
    (Sekuboyina et al., Med Image Anal 2021, section 4); (3) each is refined by the 3 × 3 × 3 weighted mean of the
    channels' maximum (the map that peaks there; a misnamed channel's tail would pull the centre away).

    Example:
        >>> p = np.zeros((3, 9, 9, 30), np.float32)
        >>> p[1, 4, 4, 25] = 0.9; p[1, 4, 4, 15] = 0.5; p[2, 4, 4, 5] = 0.8   # channel 1 peaks twice
        >>> g = Volume(np.zeros((9, 9, 30), np.uint8), (4.0, 4.0, 4.0))
        >>> {v: float(c[2]) for v, c in chain_centroids(p, g, (20, 21, 22)).items()}  # top to bottom: 20, 21, 22
        {20: 100.0, 21: 60.0, 22: 20.0}
    """
    if probabilities.shape[1:] != grid.shape or len(probabilities) != len(values):
        raise LumbarLabError(f"heatmaps {probabilities.shape} do not match {len(values)} values on a grid of "
                             f"{grid.shape}.")
    best = probabilities.max(axis=0)
    size = [max(int(round(min_distance_mm / s)), 1) | 1 for s in grid.spacing]  # odd: centred on the voxel
    peaks = np.argwhere((best >= threshold) & (best == ndimage.maximum_filter(best, size=size, mode="constant")))
    peaks = peaks[np.argsort(-best[tuple(peaks.T)])]
    kept: list[np.ndarray] = []
    for idx in peaks:  # strongest first; a weaker one close to a kept one is the same vertebra
        world = grid.index_to_world(idx.astype(float))
        if all(np.linalg.norm(world - grid.index_to_world(k.astype(float))) >= min_distance_mm for k in kept):
            kept.append(idx)
    if not kept:
        return {}
    kept.sort(key=lambda idx: -grid.index_to_world(idx.astype(float))[2])  # head (+z) first
    n, c = len(kept), len(values)
    scores = {}
    for offset in range(-n + 1, c):
        pairs = [(i, offset + i) for i in range(n) if 0 <= offset + i < c]
        scores[offset] = sum(float(probabilities[ch][tuple(kept[i])]) for i, ch in pairs)
    offset = max(scores, key=scores.get)
    out = {}
    for i, idx in enumerate(kept):
        ch = offset + i
        if not 0 <= ch < c:
            continue
        # refined on the map that peaks here (a misnamed channel's tail would pull the centre away)
        out[int(values[ch])] = grid.index_to_world(_weighted_peak(best, tuple(idx)))
    return out
