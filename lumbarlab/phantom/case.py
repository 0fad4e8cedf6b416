"""One phantom case rendered in every modality, with its ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.measure import (
    bone_density_category,
    cobb_angle,
    genant_grade,
    lordosis_angle,
    meyerding_grade,
    meyerding_slip,
    vertebral_heights,
)
from lumbarlab.phantom.anatomy import Spine, build_spine
from lumbarlab.phantom.labels import VERSE_LABEL, VERTEBRAE, Material
from lumbarlab.phantom.params import PhantomParams, sample_params
from lumbarlab.phantom.radiography import detector_display, geometry, project_cone
from lumbarlab.phantom.render import (
    MU_WATER_PER_MM,
    ct_table,
    hu_to_mu,
    project,
    render_ct,
    render_mri,
    trabecular_texture,
)
from lumbarlab.phantom.voxelize import Grid, default_grid, voxelize
from lumbarlab.volume import Radiograph, Volume

__all__ = ["Case", "make_case", "MODALITIES"]

MODALITIES = ("ct", "t1", "t2", "xray")


@dataclass
class Case:
    """A rendered phantom case. Volumes share one RAS+ grid; radiographs are projections of the CT.

    Attributes:
        params: the case parameters.
        spine: the geometry the images were drawn from.
        labels: VerSe-valued label map (see :mod:`lumbarlab.phantom.labels`).
        material: tissue codes (:class:`lumbarlab.phantom.labels.Material`).
        ct: HU with noise; ``ct_clean`` without.
        t1, t2: MRI volumes (a.u.).
        lateral, ap: radiographs with projected labels and corner landmarks.
        truth: parameters plus what was measured on the geometry.
    """

    params: PhantomParams
    spine: Spine
    grid: Grid
    labels: Volume
    material: Volume
    ct: Volume | None = None
    ct_clean: Volume | None = None
    t1: Volume | None = None
    t2: Volume | None = None
    lateral: Radiograph | None = None
    ap: Radiograph | None = None
    truth: dict = field(default_factory=dict)

    def volume(self, modality: str) -> Volume:
        """The 3D image for ``"ct"``, ``"t1"`` or ``"t2"``."""
        vol = {"ct": self.ct, "t1": self.t1, "t2": self.t2}.get(modality.lower())
        if vol is None:
            raise LumbarLabError(f"modality {modality!r} was not rendered; ask make_case for it.")
        return vol

    def mri_sagittal(self, weighting: str = "T2", thickness: float = 4.0, gap: float = 0.0) -> tuple[Volume, Volume]:
        """Thick sagittal MRI slices as clinical lumbar protocols acquire them (SPIDER-like): the volume
        averaged over slabs of ``thickness`` mm along x, one every ``thickness + gap`` mm (the slice gap of
        a 2D protocol, often 10–20 % of the thickness), and the labels of each slab's central plane.
        Returns (image, labels) with spacing (thickness + gap, dy, dz)."""
        vol = self.volume(weighting.lower())
        if thickness <= 0 or gap < 0:
            raise LumbarLabError(f"slice thickness must be > 0 and gap >= 0 mm, got {thickness} and {gap}.")
        step = max(int(round(thickness / vol.spacing[0])), 1)
        pitch = max(int(round((thickness + gap) / vol.spacing[0])), step)
        n = (vol.shape[0] - step) // pitch + 1 if vol.shape[0] >= step else 0
        if n < 1:
            raise LumbarLabError(f"slab thickness {thickness} mm exceeds the volume's width.")
        starts = np.arange(n) * pitch
        arr = np.stack([vol.array[s:s + step].mean(axis=0, dtype=np.float32) for s in starts])
        lab = self.labels.array[starts + step // 2]
        spacing = (vol.spacing[0] * pitch, vol.spacing[1], vol.spacing[2])
        origin = np.asarray(vol.origin) + np.array([(step - 1) / 2 * vol.spacing[0], 0.0, 0.0])
        return Volume(arr, spacing, tuple(origin)), Volume(lab, spacing, tuple(origin))


def _to_image(points: np.ndarray, grid: Grid, view: str) -> np.ndarray:
    """World mm → (x=col, y=row) pixels of the lateral or AP projection of ``grid``."""
    ijk = (np.asarray(points, dtype=float) - np.asarray(grid.origin)) / np.asarray(grid.spacing)
    nx, ny, nz = grid.shape
    row = (nz - 1) - ijk[..., 2]
    col = (ny - 1) - ijk[..., 1] if view == "lateral" else (nx - 1) - ijk[..., 0]
    return np.stack([col, row], axis=-1)


def _body_chord_outside(spine: Spine, grid: Grid, view: str) -> np.ndarray:
    """Path length (mm) through the body ellipse that lies outside the grid, per detector column.

    The CT grid is a spine-centred crop, so radiographs add the soft tissue beyond it
    analytically (water-equivalent) instead of rendering the whole trunk.
    """
    x, y, _ = grid.axes()
    A, B, yc = spine.body_half_lr, spine.body_half_ap, spine.body_centre_y
    if view == "lateral":  # rays along x, one per y
        half = A * np.sqrt(np.clip(1 - ((y - yc) / B) ** 2, 0, None))
        lo, hi = x[0] - grid.spacing[0] / 2, x[-1] + grid.spacing[0] / 2
        inside = np.clip(np.minimum(half, hi) - np.maximum(-half, lo), 0, None)
    else:  # rays along y, one per x
        half = B * np.sqrt(np.clip(1 - (x / A) ** 2, 0, None))
        lo, hi = y[0] - grid.spacing[1] / 2, y[-1] + grid.spacing[1] / 2
        inside = np.clip(np.minimum(yc + half, hi) - np.maximum(yc - half, lo), 0, None)
    return (2 * half - inside).astype(np.float32)


def _surroundings_outside(case: Case, view: str, across: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Line integrals (Δμ against soft tissue) of ribs, iliac wings, organs and gas outside the CT grid."""
    from lumbarlab.phantom.surroundings import line_integrals, solids

    items = solids(case.spine)
    if not items:
        return np.zeros((across.size, up.size), dtype=np.float32)
    lut = ct_table(case.params)
    soft = float(hu_to_mu(np.float32(lut[Material.SOFT])))
    dmu = {it.material: float(hu_to_mu(np.float32(lut[it.material]))) - soft for it in items}
    spine, grid = case.spine, case.grid
    axis = 0 if view == "lateral" else 1
    lo = grid.origin[axis] - grid.spacing[axis] / 2
    hi = grid.origin[axis] + (grid.shape[axis] - 0.5) * grid.spacing[axis]
    if view == "lateral":
        ray_range = (-spine.body_half_lr, spine.body_half_lr)
    else:
        ray_range = (spine.body_centre_y - spine.body_half_ap, spine.body_centre_y + spine.body_half_ap)
    return line_integrals(items, dmu, axis, ray_range, across, up, skip=(lo, hi))


def _project_labels(labels: np.ndarray, axis: int, wanted: list[int], project_box, margin: int = 0) -> np.ndarray:
    """Per ray, the label with the longest path (parallel or point-source rays); 0 where no wanted label is crossed.

    ``project_box(weights, box)`` gives the line integrals of a 3D weight array cut from the volume at ``box``
    (index slices), on the detector pixels of the box's two other axes. Each label is projected inside its own
    bounding box, widened by ``margin`` voxels across the rays (for a point source's magnification and shift)."""
    shape2d = tuple(n for a, n in enumerate(labels.shape) if a != axis)
    best = np.zeros(shape2d, dtype=np.float32)
    out = np.zeros(shape2d, dtype=np.uint8)
    boxes = ndimage.find_objects(labels)
    for lab in wanted:
        if lab - 1 >= len(boxes) or boxes[lab - 1] is None:
            continue
        box = tuple(sl if a == axis else slice(max(sl.start - margin, 0), min(sl.stop + margin, n))
                    for a, (sl, n) in enumerate(zip(boxes[lab - 1], labels.shape, strict=True)))
        path = project_box((labels[box] == lab).astype(np.float32), box)
        region = tuple(sl for a, sl in enumerate(box) if a != axis)
        win = path > np.maximum(best[region], 0.5)
        best[region] = np.where(win, path, best[region])
        out[region] = np.where(win, np.uint8(lab), out[region])
    return out


def _radiograph(case: Case, view: str, rng: np.random.Generator | None) -> Radiograph:
    grid, spine, params = case.grid, case.spine, case.params
    axis = 0 if view == "lateral" else 1
    axes = grid.axes()
    across_axis = 1 if view == "lateral" else 0
    across, up = axes[across_axis], axes[2]
    mu = hu_to_mu(case.ct_clean.array)
    geo = geometry(params)
    # the isocentre along the rays: the mid-sagittal plane (lateral) or the grid's mid-coronal plane (AP);
    # depth is measured from it towards the source (on the patient's right, or in front)
    iso = 0.0 if view == "lateral" else float(np.mean(axes[1]))
    centre = (float(np.mean(across)), float(np.mean(up)))
    bone = [VERSE_LABEL[v] for v in VERTEBRAE]
    mat = case.material.array
    in_body = (mat == Material.CORTICAL) | ((mat >= Material.TRABECULAR0) & (mat < Material.TRABECULAR0 + len(VERTEBRAE)))
    body_map = np.where(in_body, case.labels.array, 0).astype(np.uint8)
    if geo is None:
        p = project(mu, axis, grid.spacing[axis])

        def parallel_box(weights: np.ndarray, box) -> np.ndarray:
            return weights.sum(axis=axis, dtype=np.float32)

        lab = _project_labels(case.labels.array, axis, bone, parallel_box)
        body = _project_labels(body_map, axis, bone, parallel_box)
    else:
        depths = axes[axis] - iso
        pix = (grid.spacing[across_axis], grid.spacing[2])
        org = (grid.origin[across_axis], grid.origin[2])

        def cone_box(volume: np.ndarray, box: tuple[slice, slice, slice], slab_mm: float = 20.0) -> np.ndarray:
            """Line integrals of a sub-volume cut at ``box`` (its own origin across the rays)."""
            sub_origin = (org[0] + box[across_axis].start * pix[0], org[1] + box[2].start * pix[1])
            return project_cone(volume, axis, grid.spacing[axis], depths[box[axis]], geo, pix, sub_origin, centre,
                                slab_mm)

        p = project_cone(mu, axis, grid.spacing[axis], depths, geo, pix, org, centre, 4.0)
        lab = _project_labels(case.labels.array, axis, bone, cone_box, margin=8)
        body = _project_labels(body_map, axis, bone, cone_box, margin=8)
    p += (_body_chord_outside(spine, grid, view) * MU_WATER_PER_MM)[:, None]
    p += _surroundings_outside(case, view, across, up)
    # array (across, z) → display (row = superior first, col = anterior / patient-right first)
    p, lab, body = (a[::-1, ::-1].T.copy() for a in (p, lab, body))
    img = detector_display(p, params, rng, grid.spacing[2])
    spacing = (grid.spacing[2], grid.spacing[1] if view == "lateral" else grid.spacing[0])
    corners = {}
    for name, vert in spine.vertebrae.items():
        local = vert.lateral_corners_local() if view == "lateral" else vert.ap_corners_local()
        world = vert.to_world(local)
        if geo is not None:
            a, u = geo.to_detector(world[:, across_axis], world[:, 2], world[:, axis] - iso, centre)
            world = world.copy()
            world[:, across_axis], world[:, 2] = a, u
        corners[name] = _to_image(world, grid, view)
    return Radiograph(img, spacing, view, lab, corners, body_labels=body)


def _truth(case: Case) -> dict:
    """Parameters plus ground truth measured on the geometry and the label map."""
    spine, params = case.spine, case.params
    lat = {n: v.to_world(v.lateral_corners_local()) for n, v in spine.vertebrae.items()}
    ap = {n: v.to_world(v.ap_corners_local()) for n, v in spine.vertebrae.items()}
    # Measure on ideal (noise-free, parallel-beam) projections: lateral drops x, AP drops y.
    lat2 = {n: np.stack([-c[:, 1], -c[:, 2]], axis=1) for n, c in lat.items()}
    ap2 = {n: np.stack([-c[:, 0], -c[:, 2]], axis=1) for n, c in ap.items()}
    slips = {}
    for upper, lower in zip(VERTEBRAE[:-1], VERTEBRAE[1:], strict=True):
        s = meyerding_slip(lat2[upper], lat2[lower])
        slips[upper] = {"slip_percent": s, "meyerding_grade": meyerding_grade(s)}
    cobb, end_up, end_lo = cobb_angle({n: ap2[n] for n in VERTEBRAE[:-1]})
    verts = {}
    for name, v in spine.vertebrae.items():
        verts[name] = {
            "label": v.label,
            "body_centre_mm": v.body_centre().round(3).tolist(),
            "heights_mm": {"anterior": v.ha, "middle": v.hm, "posterior": v.hp},
            "expected_height_mm": v.expected_height,
            "height_loss_percent": 100.0 * v.height_loss,
            "genant_grade": genant_grade(100.0 * v.height_loss),
            "endplate_width_mm": 2 * v.a,
            "endplate_depth_mm": 2 * v.b,
            "sagittal_angle_deg": v.sagittal,
            "coronal_angle_deg": v.coronal,
            "lateral_heights_mm": vertebral_heights(lat2[name]),
        }
    discs = {}
    for name, d in spine.discs.items():
        lo, up = lat[d.lower.name], lat[d.upper.name]
        discs[name] = {
            "label": d.label,
            "pfirrmann": d.pfirrmann,
            "height_anterior_mm": float(np.linalg.norm(up[3] - lo[0])),
            "height_middle_mm": float(np.linalg.norm((up[2] + up[3]) / 2 - (lo[0] + lo[1]) / 2)),
            "height_posterior_mm": float(np.linalg.norm(up[2] - lo[1])),
            "herniation_mm": d.herniation,
        }
    tissue_l1 = params.bmd
    from lumbarlab.phantom.surroundings import iliac_crest_z, rib_carriers

    look = params.look
    realism = {
        "preset": params.realism,
        "acquisition": dict(params.acquisition),
        "rib_pairs": params.rib_pairs,
        "transitional": params.transitional if look.posterior_detail else "none",
        "ribs_on": rib_carriers(params.rib_pairs) if look.surroundings else [],
        "iliac_crest_z_mm": iliac_crest_z(spine) if look.surroundings else None,
        "spondylolysis": list(params.spondylolysis) if look.posterior_detail else [],
        "osteophytes_mm": dict(params.osteophytes) if look.posterior_detail else {},
        "endplate_concavity_mm": {n: v.concavity for n, v in spine.vertebrae.items()},
    }
    return {
        "realism": realism,
        "params": params.to_dict(),
        "slip": slips,
        "lordosis_L1_S1_deg": lordosis_angle(lat2["L1"], lat2["S1"]),
        "sacral_slope_deg": params.sacral_slope,
        "cobb": {"angle_deg": cobb, "upper_end": end_up, "lower_end": end_lo},
        "vertebrae": verts,
        "discs": discs,
        "canal_ap_mm": params.canal_diameter,
        "bone_density": {"trabecular_hu": tissue_l1, "category": bone_density_category(tissue_l1)},
    }


def make_case(
    params: PhantomParams | int | None = None,
    shape: tuple[int, int, int] = (160, 160, 200),
    spacing: float | tuple[float, float, float] = 1.0,
    modalities: tuple[str, ...] = MODALITIES,
    noise: bool = True,
    grid: Grid | None = None,
    exact_noise: bool = False,
    seed: int | None = None,
    **pathology,
) -> Case:
    """Render one case.

    Args:
        params: a :class:`PhantomParams`, or a seed from which one is drawn
            (keyword arguments then set pathology, e.g. ``slip={"L4": 30}``, or ``lordosis=60``).
        seed: the same seed as a keyword (``make_case(seed=7)`` is ``make_case(7)``); default 0.
        shape, spacing: the CT/MRI grid (voxels, mm); centred on the lumbar spine.
        modalities: any of ``"ct"``, ``"t1"``, ``"t2"``, ``"xray"`` (X-ray needs the CT).
        noise: add each modality's noise model (off gives the clean images).
        grid: render on this grid instead of one centred on this case's spine (keeps the field
            of view fixed while a pathology changes; ``shape`` and ``spacing`` are then ignored).
        exact_noise: draw every noise value afresh instead of reading the per-process noise
            bank (:mod:`lumbarlab.phantom.noise`); slower, for studies of noise itself.

    Example:
        >>> case = make_case(7, slip={"L4": 30})
        >>> round(case.truth["slip"]["L4"]["slip_percent"])
        30
        >>> make_case(seed=7, modalities=()).params.seed
        7
    """
    if seed is not None and params is not None and not (isinstance(params, (int, np.integer)) and params == seed):
        raise LumbarLabError(f"make_case got params={params!r} and seed={seed!r}; give one of them.")
    if params is None:
        params = 0 if seed is None else seed
    if not isinstance(params, PhantomParams):
        params = sample_params(params, **pathology)
    elif pathology:
        params = params.replace(**pathology)
    unknown = set(modalities) - set(MODALITIES)
    if unknown:
        raise LumbarLabError(f"unknown modalities {sorted(unknown)}; choose from {MODALITIES}.")
    spine = build_spine(params)
    grid = grid or default_grid(spine, shape, spacing)
    lab, mat = voxelize(spine, grid)
    case = Case(params, spine, grid, Volume(lab, grid.spacing, grid.origin), Volume(mat, grid.spacing, grid.origin))

    def rng(stream: int) -> np.random.Generator | None:
        return np.random.default_rng([params.seed, stream]) if noise else None

    texture = trabecular_texture(mat, params, grid.spacing) if modalities else None
    skin = spine.body_centre_y - spine.body_half_ap
    back = grid.axes()[1] - np.float32(skin)
    if "ct" in modalities or "xray" in modalities:
        ct, clean = render_ct(mat, params, rng(1), grid.spacing, exact_noise, texture)
        case.ct = Volume(ct, grid.spacing, grid.origin)
        case.ct_clean = Volume(clean, grid.spacing, grid.origin)
    for weighting, stream in (("t1", 2), ("t2", 3)):
        if weighting in modalities:
            image = render_mri(mat, params, weighting.upper(), rng(stream), grid.spacing, exact_noise, texture, back)
            setattr(case, weighting, Volume(image, grid.spacing, grid.origin))
    if "xray" in modalities:
        case.lateral = _radiograph(case, "lateral", rng(4))
        case.ap = _radiograph(case, "ap", rng(5))
    case.truth = _truth(case)
    for rad in (case.lateral, case.ap):
        if rad is not None:
            rad.truth = case.truth
    return case

