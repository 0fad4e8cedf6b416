"""Landmarks from masks and back: vertebral-body corners from a 2D segmentation, corner CSVs,
centroids of 3D label maps.

Corners are recovered in two steps: the extreme boundary points along the body's diagonals
(the minimum-area bounding rectangle gives the endplate direction e1 and the height direction e2,
and each rough corner maximises ±(p·e1) ± (p·e2)), then lines fitted to the four sides'
boundary pixels, intersected for sub-pixel corners. On a quadrilateral body this returns its vertices within a pixel,
so measurements can run on a model's predicted mask, not only on annotated corners.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from lumbarlab.errors import LumbarLabError

__all__ = ["corners_from_mask", "corners_to_mask", "corners_from_label_image", "corners_from_lateral_mask", "centroids",
           "write_corners_csv", "read_corners_csv"]


def corners_from_mask(mask: np.ndarray, first_side: str = "left", name: str = "vertebra",
                      superior_towards: tuple[float, float] | None = None) -> np.ndarray:
    """Four corners (x, y) of one vertebral body in a 2D mask, ordered superior-first,
    superior-second, inferior-second, inferior-first; "first" is the image-left side unless
    ``first_side="right"`` (lateral views with anterior on the right).

    Args:
        mask: 2D boolean mask of one body (the largest piece is used).
        first_side: "left" or "right", the side whose corners come first.
        name: the body's name, for error messages.
        superior_towards: (x, y) pixel of the neighbour above, e.g. L5's centre for the sacrum. By default the
            superior endplate is the side nearer the image top, which is ambiguous for a body tilted by about 45°
            — the S1 endplate of a sacral slope of 40–50° (normal 30–50°, Legaye et al., Eur Spine J 1998). Given
            the neighbour, the superior endplate is the side whose midpoint is nearest to it.

    Raises:
        LumbarLabError: naming ``name`` when the mask is empty or too small to have corners.

    Example:
        >>> tilted = np.zeros((60, 60), bool)
        >>> yy, xx = np.mgrid[:60, :60]
        >>> u, v = (xx - 30 + yy - 30) / np.sqrt(2), (yy - 30 - (xx - 30)) / np.sqrt(2)  # a square turned 45°
        >>> tilted[(np.abs(u) < 12) & (np.abs(v) < 12)] = True
        >>> top = corners_from_mask(tilted, superior_towards=(10.0, 10.0))[:2]  # the neighbour is up and left
        >>> bool(np.all(top.mean(axis=0) < 30))
        True
    """
    m = np.asarray(mask).astype(bool)
    if m.ndim != 2:
        raise LumbarLabError(f"{name}: corners need a 2D mask, got shape {m.shape}.")
    lab, n = ndimage.label(m)
    if n == 0:
        raise LumbarLabError(f"{name}: the mask is empty; no corners to find.")
    if n > 1:  # keep the largest piece: a body, not a stray pixel or a process
        sizes = ndimage.sum(m, lab, range(1, n + 1))
        m = lab == (int(np.argmax(sizes)) + 1)
    if m.sum() < 12:
        raise LumbarLabError(f"{name}: the mask has only {int(m.sum())} pixels; too small to find corners.")
    boundary = m & ~ndimage.binary_erosion(m)
    ys, xs = np.nonzero(boundary)
    pts = np.stack([xs, ys], axis=1).astype(float)
    centre = pts.mean(axis=0)
    e1 = _endplate_axis(pts)
    e2 = np.array([-e1[1], e1[0]])  # points down the image (towards inferior)
    if e2[1] < 0:
        e2 = -e2
    rel = pts - centre
    a, b = rel @ e1, rel @ e2
    rough = np.array([pts[int(np.argmax(s1 * a + s2 * b))] for s1, s2 in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    corners = _refine_corners(pts, rough, centre)
    if superior_towards is not None:
        # the corners run clockwise on screen from the superior-left one; start instead at the side that faces
        # the neighbour, keeping the clockwise order (so its image-left end still comes first)
        mids = (corners + np.roll(corners, -1, axis=0)) / 2
        k = int(np.argmin(np.linalg.norm(mids - np.asarray(superior_towards, float), axis=1)))
        corners = np.roll(corners, -k, axis=0)
    if first_side == "right":
        corners = corners[[1, 0, 3, 2]]
    elif first_side != "left":
        raise LumbarLabError(f"first_side must be 'left' or 'right', got {first_side!r}.")
    return corners


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    t = np.clip(((p - a) @ d) / max(float(d @ d), 1e-9), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * d), axis=1)


def _refine_corners(pts: np.ndarray, rough: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Sub-pixel corners: fit a line to each side's boundary pixels (total least squares, away from
    the corners), move it half a pixel outwards (pixel centres lie inside the outline) and intersect
    neighbouring sides. Falls back to the extreme pixels when a side is too short to fit."""
    sides = [(rough[i], rough[(i + 1) % 4]) for i in range(4)]
    dist = np.stack([_segment_distance(pts, a, b) for a, b in sides], axis=1)
    owner = np.argmin(dist, axis=1)
    lines = []
    for i, (a, b) in enumerate(sides):
        to_end = np.minimum(np.linalg.norm(pts - a, axis=1), np.linalg.norm(pts - b, axis=1))
        # only the side's ends: an endplate may be concave (biconcave fracture) in its middle
        reach = max(0.3 * float(np.linalg.norm(b - a)), 4.0)
        sel = pts[(owner == i) & (to_end >= 2.0) & (to_end <= reach)]
        if len(sel) < 3:
            return rough + 0.5 * np.sign(rough - centre)
        mean = sel.mean(axis=0)
        _, _, vt = np.linalg.svd(sel - mean)
        direction = vt[0]
        normal = np.array([-direction[1], direction[0]])
        if (mean - centre) @ normal < 0:
            normal = -normal
        lines.append((mean + 0.5 * normal, direction))
    out = []
    for i in range(4):  # corner i joins side i-1 and side i
        (p1, d1), (p2, d2) = lines[i - 1], lines[i]
        m = np.array([d1, -d2]).T
        if abs(np.linalg.det(m)) < 1e-6:
            return rough + 0.5 * np.sign(rough - centre)
        t = np.linalg.solve(m, p2 - p1)
        out.append(p1 + t[0] * d1)
    out = np.array(out)
    fallback = rough + 0.5 * np.sign(rough - centre)
    far = np.linalg.norm(out - fallback, axis=1) > 2.0  # a poor fit (ragged mask): keep the extreme pixel
    out[far] = fallback[far]
    return out


def _endplate_axis(pts: np.ndarray) -> np.ndarray:
    """Unit vector along the endplates: the side of the minimum-area bounding rectangle (rotating
    calipers over the convex hull) nearer the image horizontal. Unlike principal axes it stays
    defined for a square body."""
    from scipy.spatial import ConvexHull

    hull = pts[ConvexHull(pts).vertices]
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    best, best_area = 0.0, np.inf
    for a in angles:
        c, s = np.cos(a), np.sin(a)
        u, v = hull @ [c, s], hull @ [-s, c]
        area = np.ptp(u) * np.ptp(v)
        if area < best_area - 1e-9:
            best, best_area = a, area
    # the rectangle's two axes are best and best + 90°; pick the one nearer horizontal
    a = best if best <= np.pi / 4 else best - np.pi / 2
    return np.array([np.cos(a), np.sin(a)])


def corners_to_mask(corners: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise the quadrilateral of four corners into a boolean mask (pixel centres inside)."""
    from matplotlib.path import Path as MplPath

    c = np.asarray(corners, dtype=float)
    if c.shape != (4, 2):
        raise LumbarLabError(f"expected (4, 2) corners, got {c.shape}.")
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    inside = MplPath(c).contains_points(np.stack([xx.ravel(), yy.ravel()], axis=1), radius=1e-9)
    return inside.reshape(shape)


def corners_from_label_image(labels: np.ndarray, names: dict[int, str], first_side: str = "left") -> dict[str, np.ndarray]:
    """Corners of every labelled body in a 2D label image, keyed by level name."""
    out = {}
    present = set(np.unique(labels).tolist())
    for value, name in names.items():
        if value in present:
            out[name] = corners_from_mask(labels == value, first_side, name)
    if not out:
        raise LumbarLabError(f"none of the labels {sorted(names)} occur in the label image.")
    return out


def corners_from_lateral_mask(classes: np.ndarray, body: int = 1, sacrum: int = 2, min_pixels: int = 150,
                              first_side: str = "left") -> dict[str, np.ndarray]:
    """Corners of L1–L5 and S1 from a lateral radiograph's class mask (bodies one class, the sacrum another).

    The bodies are the connected pieces of ``body`` with at least ``min_pixels`` pixels (discs separate them),
    named upwards from the lowest (L5, L4, …; a mask may show fewer than five). The S1 superior endplate is the
    side of the sacrum that faces the lowest body (see ``superior_towards`` of :func:`corners_from_mask`): with
    the sacrum tilted by its slope, "the side nearer the image top" picks the wrong side in about half the
    cases, and every L5 slip measured from it is wrong.

    Args:
        classes: 2D integer mask (e.g. :data:`lumbarlab.datasets.xray.SEG_CLASSES`: 0 background, 1 bodies,
            2 sacrum), anterior on the image left unless ``first_side="right"``.
        body: class value of the vertebral bodies.
        sacrum: class value of the sacrum.
        min_pixels: smaller pieces are ignored (specks of a predicted mask).
        first_side: "left" or "right", as in :func:`corners_from_mask`.

    Returns:
        level name → (4, 2) corners (x, y) in pixels, ordered as :func:`corners_from_mask` orders them.

    Raises:
        LumbarLabError: when there is no sacrum or no body to name.

    Example:
        >>> m = np.zeros((80, 60), np.uint8)
        >>> m[10:30, 15:45] = 1; m[36:56, 14:44] = 1; m[62:80, 14:46] = 2
        >>> c = corners_from_lateral_mask(m, min_pixels=50)
        >>> sorted(c), c["S1"][0].round(1).tolist(), c["L5"][0].round(1).tolist()  # pixel outlines: half a pixel out
        (['L4', 'L5', 'S1'], [13.5, 61.5], [13.5, 35.5])
    """
    classes = np.asarray(classes)
    if not np.any(classes == sacrum):
        raise LumbarLabError("the mask has no sacrum, so the bodies cannot be named from S1 upwards; check the class "
                             f"values (sacrum = {sacrum}) or segment the sacrum too.")
    labels, n = ndimage.label(classes == body)
    sizes = ndimage.sum(np.ones_like(labels), labels, range(1, n + 1)) if n else []
    rows = ndimage.center_of_mass(np.ones_like(labels), labels, range(1, n + 1)) if n else []
    pieces = sorted(((r, c, j + 1) for j, ((r, c), size) in enumerate(zip(rows, sizes, strict=True)) if size >= min_pixels),
                    reverse=True)  # lowest (largest row) first
    if not pieces:
        raise LumbarLabError(f"the mask has no vertebral body of at least {min_pixels} pixels (class {body}).")
    out = {"S1": corners_from_mask(classes == sacrum, first_side, "S1", superior_towards=(pieces[0][1], pieces[0][0]))}
    for level, (_, _, j) in zip(("L5", "L4", "L3", "L2", "L1"), pieces, strict=False):
        out[level] = corners_from_mask(labels == j, first_side, level)
    return out


def centroids(volume, names: dict[int, str] | None = None) -> dict[str, list[float]]:
    """Centre of mass (world mm) of each labelled structure of a :class:`~lumbarlab.volume.Volume`."""
    from lumbarlab.labels import LABEL_NAMES

    names = LABEL_NAMES if names is None else names
    out = {}
    for idx, sl in enumerate(ndimage.find_objects(volume.array.astype(np.int64, copy=False))):
        lab = idx + 1
        if sl is None or lab not in names:
            continue
        com = np.array(ndimage.center_of_mass(volume.array[sl] == lab)) + np.array([s.start for s in sl])
        out[names[lab]] = volume.index_to_world(com).round(3).tolist()
    return out


def write_corners_csv(corners: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write corners as ``level,edge,x_first,y_first,x_second,y_second`` rows (pixels): a superior
    and an inferior row per vertebra, as BUU-LSPINE-style annotations list endplate edges."""
    from lumbarlab.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["level", "edge", "x_first", "y_first", "x_second", "y_second"])
        for level, c in corners.items():
            out.writerow([level, "superior", *np.round(c[0], 3), *np.round(c[1], 3)])
            if np.all(np.isfinite(c[2:])):  # S1 of a lateral annotation has no inferior endplate (NaN)
                out.writerow([level, "inferior", *np.round(c[3], 3), *np.round(c[2], 3)])
    return path


def read_corners_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a corner CSV (see :func:`write_corners_csv`) into level → (4, 2) corners.

    S1 may have only its superior row (a lateral view shows no S1 inferior endplate); its inferior
    corners are then NaN, which the lateral measurements never use."""
    edges: dict[str, dict[str, list[float]]] = {}
    try:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                xy = [float(row[k]) for k in ("x_first", "y_first", "x_second", "y_second")]
                edges.setdefault(row["level"], {})[row["edge"]] = xy
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise LumbarLabError(
            f"{path}: not a corner CSV with columns level,edge,x_first,y_first,x_second,y_second ({exc})."
        ) from exc
    if not edges:
        raise LumbarLabError(f"{path}: the corner CSV has no rows.")
    out = {}
    for level, e in edges.items():
        if level == "S1" and set(e) == {"superior"}:
            e = {**e, "inferior": [np.nan] * 4}
        if set(e) != {"superior", "inferior"}:
            raise LumbarLabError(f"{path}: vertebra {level} needs both a superior and an inferior row.")
        s, i = e["superior"], e["inferior"]
        out[level] = np.array([[s[0], s[1]], [s[2], s[3]], [i[2], i[3]], [i[0], i[1]]])
    return out
