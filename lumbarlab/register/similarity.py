"""Similarity measures for image registration, in torch (differentiable, any device): how well two images agree.

* :func:`ssd` — mean of squared differences: right when the two images share one intensity scale (CT to CT).
* :func:`ncc` — normalised cross-correlation: allows a linear change of intensity (gain and offset).
* :func:`mutual_information` — how much one image's intensity tells about the other's, from a Parzen-window joint
  histogram (Viola & Wells 1997; Maes et al. 1997; Mattes et al. 2003); optionally normalised (Studholme et al.
  1999). Any one-to-one (even non-monotonic) intensity map leaves it unchanged: the measure of choice across
  modalities (MR to CT).
* :func:`mind` — the Modality Independent Neighbourhood Descriptor (Heinrich et al. 2012): per voxel, how the image
  resembles itself one step away in each of the six directions; MR and CT of one patient have similar descriptors,
  compared by :func:`ssd` (:func:`mind_ssd`).

Each measure takes two tensors of one shape (flat samples or whole images) and optional non-negative ``weights``
(a mask: 0 leaves an element out) that broadcast against them. Higher is better for :func:`ncc` and
:func:`mutual_information`; lower for :func:`ssd` and :func:`mind_ssd` — a registration minimises ``ssd``,
``1 − ncc`` or ``−mutual_information``.

References:
    P. Viola, W. M. Wells III. Alignment by maximization of mutual information. *IJCV* 24(2):137–154, 1997.
    F. Maes, A. Collignon, D. Vandermeulen, G. Marchal, P. Suetens. Multimodality image registration by
    maximization of mutual information. *IEEE TMI* 16(2):187–198, 1997.
    C. Studholme, D. L. G. Hill, D. J. Hawkes. An overlap invariant entropy measure of 3D medical image alignment.
    *Pattern Recognition* 32(1):71–86, 1999 (normalised mutual information).
    D. Mattes, D. R. Haynor, H. Vesselle, T. K. Lewellen, W. Eubank. PET-CT image registration in the chest using
    free-form deformations. *IEEE TMI* 22(1):120–128, 2003 (cubic B-spline Parzen windows).
    M. P. Heinrich, M. Jenkinson, M. Bhushan, T. Matin, F. V. Gleeson, S. M. Brady, J. A. Schnabel. MIND: Modality
    independent neighbourhood descriptor for multi-modal deformable registration. *Medical Image Analysis*
    16(7):1423–1435, 2012.

Example:
    >>> import torch
    >>> ct = torch.linspace(-1000.0, 1000.0, 500)                  # HU
    >>> mr = 4000.0 - 2.0 * ct                                     # another "modality": inverted and rescaled
    >>> round(float(ssd(ct, mr)) ** 0.5) > 1000, round(float(ncc(ct, mr)), 3)
    (True, -1.0)
    >>> bool(abs(mutual_information(ct, mr) - mutual_information(ct, ct)) < 1e-4)
    True
"""

from __future__ import annotations

import math

__all__ = ["ssd", "ncc", "joint_histogram", "entropy", "mutual_information", "mind", "mind_ssd"]

_EPS = 1e-12


def _weighted(a, b, weights):
    import torch

    from lumbarlab.errors import LumbarLabError

    if a.shape != b.shape:
        raise LumbarLabError(f"the two images must have one shape, got {tuple(a.shape)} and {tuple(b.shape)}; "
                             "resample one onto the other's grid first.")
    if weights is None:
        return a, b, None
    w = torch.broadcast_to(torch.as_tensor(weights, dtype=a.dtype, device=a.device), a.shape)
    if float(w.sum()) <= 0:
        raise LumbarLabError("the weights (mask) leave nothing to compare: every weight is zero.")
    return a, b, w


def ssd(a, b, weights=None):
    """Mean of squared differences, ``Σ w (a − b)² / Σ w``, in the images' units squared (HU² for CT).

    Zero for identical images; it assumes that one tissue has one intensity in both, so it is the wrong measure
    across modalities (bone is bright in CT and dark in T2).

    Args:
        a, b: tensors of one shape (e.g. the fixed image and the warped moving image, or (C, N) descriptors).
        weights: optional non-negative weights broadcastable to that shape (a mask); default all 1.

    Example:
        >>> import torch
        >>> float(ssd(torch.tensor([0.0, 1, 2]), torch.tensor([0.0, 1, 5])))
        3.0
        >>> float(ssd(torch.tensor([0.0, 1, 2]), torch.tensor([0.0, 1, 5]), weights=torch.tensor([1.0, 1, 0])))
        0.0
    """
    a, b, w = _weighted(a, b, weights)
    d = (a - b) ** 2
    return d.mean() if w is None else (w * d).sum() / w.sum()


def ncc(a, b, weights=None):
    """Normalised cross-correlation (Pearson's r) of two images, dimensionless in [−1, 1]: 1 when ``b = g·a + c``
    with ``g > 0``, whatever the gain and offset; −1 for an inverted copy.

    Args:
        a, b: tensors of one shape.
        weights: optional non-negative weights broadcastable to that shape (a mask).

    Example:
        >>> import torch
        >>> a = torch.tensor([1.0, 2, 3, 4])
        >>> round(float(ncc(a, 10 * a + 7)), 6), round(float(ncc(a, -a)), 6)
        (1.0, -1.0)
    """
    import torch

    a, b, w = _weighted(a, b, weights)
    if w is None:
        a, b = a - a.mean(), b - b.mean()
        return (a * b).sum() / torch.sqrt((a * a).sum() * (b * b).sum() + _EPS)
    total = w.sum()
    a = a - (w * a).sum() / total
    b = b - (w * b).sum() / total
    return (w * a * b).sum() / torch.sqrt((w * a * a).sum() * (w * b * b).sum() + _EPS)


def _bin_position(x, bins: int, value_range):
    """Intensities as positions on the bin axis: bin k's centre at k, clipped to [0, bins − 1]."""
    import torch

    if value_range is None:
        with torch.no_grad():
            lo, hi = float(x.min()), float(x.max())
    else:
        lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        hi = lo + 1.0
    return ((x - lo) / (hi - lo) * (bins - 1)).clamp(0.0, bins - 1.0)


def _parzen(t, kernel: str, sigma: float, bins: int):
    """Each sample's few non-zero Parzen weights (N, S) and their bin indices (N, S) over ``size`` padded bins."""
    import torch

    from lumbarlab.errors import LumbarLabError

    if kernel == "linear":                             # B-spline of order 1: a hard histogram at bin centres
        base = t.detach().floor().clamp(max=bins - 2)
        offsets = torch.arange(0, 2, dtype=t.dtype, device=t.device)
        k = base[:, None] + offsets
        w = (1.0 - (t[:, None] - k).abs()).clamp(min=0.0)
        return w, k.long(), bins
    if kernel == "bspline":                            # cubic B-spline (Mattes et al. 2003), 2 bins of padding
        base = t.detach().floor()
        k = base[:, None] + torch.arange(-1, 3, dtype=t.dtype, device=t.device)
        u = (t[:, None] - k).abs()
        w = torch.where(u < 1.0, (4.0 - 6.0 * u**2 + 3.0 * u**3) / 6.0,
                        torch.where(u < 2.0, (2.0 - u).clamp(min=0.0) ** 3 / 6.0, torch.zeros_like(u)))
        return w, (k + 2).long(), bins + 4             # the four weights sum to 1
    if kernel == "gaussian":                           # truncated at 3 σ, renormalised
        reach = max(1, int(math.ceil(3.0 * sigma)))
        pad = reach + 1
        base = t.detach().round()
        k = base[:, None] + torch.arange(-reach, reach + 1, dtype=t.dtype, device=t.device)
        w = torch.exp(-0.5 * ((t[:, None] - k) / sigma) ** 2)
        return w / w.sum(dim=1, keepdim=True), (k + pad).long(), bins + 2 * pad
    raise LumbarLabError(f"kernel must be 'bspline', 'gaussian' or 'linear', got {kernel!r}.")


def joint_histogram(a, b, bins: int = 32, weights=None, value_range_a=None, value_range_b=None,
                    kernel: str = "bspline", sigma: float = 0.5):
    """The joint probability table p(i, j) of the intensities of ``a`` and ``b`` (a square tensor that sums to 1),
    each sample spread over neighbouring bins by a Parzen window so that it is differentiable in the intensities.

    Args:
        a, b: tensors of one shape (flattened inside).
        bins: K, the number of intensity bins over each range; the cubic B-spline adds 2 bins at each end (K + 4
            rows), the Gaussian ⌈3σ⌉ + 1.
        weights: optional non-negative weights per element (a mask).
        value_range_a, value_range_b: (low, high) intensities mapped to the first and last bin centre; values
            beyond are clipped. Default: each image's min and max (not differentiated).
        kernel: ``"bspline"`` (cubic B-spline, Mattes et al. 2003), ``"gaussian"`` (σ = ``sigma`` bins, truncated at
            3σ; Viola & Wells 1997) or ``"linear"`` (order-1 B-spline: a plain histogram for values at bin centres).

    Example:
        >>> import torch
        >>> p = joint_histogram(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]), bins=2, kernel="linear")
        >>> p.tolist()
        [[0.0, 0.5], [0.5, 0.0]]
    """
    import torch

    a, b, w = _weighted(a, b, weights)
    wa, ka, size = _parzen(_bin_position(a.reshape(-1), bins, value_range_a), kernel, sigma, bins)
    wb, kb, _ = _parzen(_bin_position(b.reshape(-1), bins, value_range_b), kernel, sigma, bins)
    if w is not None:
        wa = wa * w.reshape(-1, 1)
    contrib = (wa[:, :, None] * wb[:, None, :]).reshape(-1)        # each sample's S × S cells of the table
    cells = (ka[:, :, None] * size + kb[:, None, :]).reshape(-1)
    joint = torch.zeros(size * size, dtype=contrib.dtype, device=contrib.device).index_add(0, cells, contrib)
    joint = joint.reshape(size, size)
    return joint / (joint.sum() + _EPS)


def _h(p):
    import torch

    return -(p * torch.log(p.clamp(min=_EPS))).sum()


def entropy(a, bins: int = 32, weights=None, value_range=None, kernel: str = "bspline", sigma: float = 0.5):
    """Shannon entropy H(A) = −Σ p(i) ln p(i) of an image's intensities (nats), from the same Parzen histogram as
    :func:`mutual_information`.

    Example:
        >>> import torch
        >>> round(float(entropy(torch.tensor([0.0, 0, 1, 1]), bins=2, kernel="linear")), 6) == round(math.log(2), 6)
        True
    """
    return _h(joint_histogram(a, a, bins, weights, value_range, value_range, kernel, sigma).sum(dim=1))


def mutual_information(a, b, bins: int = 32, weights=None, value_range_a=None, value_range_b=None,
                       kernel: str = "bspline", sigma: float = 0.5, normalised: bool = False):
    """Mutual information I(A; B) = H(A) + H(B) − H(A, B) of two images' intensities, in nats (natural log), from a
    Parzen-window joint histogram (:func:`joint_histogram`) — differentiable, so a registration can climb it.

    It is high when the intensity of one image predicts the other's, by whatever rule: an image with itself gives
    its entropy H(A), a copy under any one-to-one intensity map (inverted, or CT → "MR") gives the same, a shuffled
    copy nearly 0. With ``normalised`` it is Studholme's NMI = (H(A) + H(B)) / H(A, B), between 1 and 2, which does
    not reward a smaller overlap.

    Args:
        a, b: tensors of one shape.
        bins, weights, value_range_a, value_range_b, kernel, sigma: as in :func:`joint_histogram`.
        normalised: return NMI instead of MI.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(4000, generator=g)
        >>> same, inverted = mutual_information(x, x), mutual_information(x, 1 - 3 * x)
        >>> shuffled = mutual_information(x, x[torch.randperm(4000, generator=g)])
        >>> bool(abs(same - inverted) < 1e-4), bool(shuffled < 0.1 < same)
        (True, True)
    """
    p = joint_histogram(a, b, bins, weights, value_range_a, value_range_b, kernel, sigma)
    ha, hb, hab = _h(p.sum(dim=1)), _h(p.sum(dim=0)), _h(p)
    return (ha + hb) / hab if normalised else ha + hb - hab


_SIX = ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))


def _shift(x, offset):
    """``x`` (B, C, D, H, W) moved so that out[..., p] = x[..., p + offset], edges replicated."""
    import torch

    d, h, w = x.shape[-3:]
    out = x
    for axis, (o, n) in enumerate(zip(offset, (d, h, w), strict=True)):
        if o == 0:
            continue
        idx = torch.arange(n, device=x.device) + o
        out = out.index_select(axis + 2, idx.clamp(0, n - 1))
    return out


def _gauss_blur(x, sigma: float):
    """Separable Gaussian blur (σ in voxels) of a (B, C, D, H, W) tensor, edges replicated."""
    import torch

    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(2.0 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    for axis in range(3):
        shape = [1, 1, 1]
        shape[axis] = k.numel()
        weight = k.reshape(1, 1, *shape).repeat(c, 1, 1, 1, 1)
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        x = torch.nn.functional.conv3d(torch.nn.functional.pad(x, pad, mode="replicate"), weight, groups=c)
    return x


def mind(volume, radius: int = 1, sigma: float = 0.8):
    """The MIND descriptor (Heinrich et al. 2012, six-neighbourhood variant) of a 3D image: six channels per voxel,
    dimensionless in (0, 1], that describe the local structure and not the intensities.

    For each direction r of the six-neighbourhood (±x, ±y, ±z, ``radius`` voxels away), the patch distance
    D_p(I, x, r) = Σ_p G_σ(p) (I(x + p) − I(x + r + p))² (a Gaussian-weighted patch of ``sigma`` voxels) is turned
    into MIND(I, x, r) = exp(−D_p(I, x, r) / V(I, x)) / n, with V(I, x) the mean of the six D_p (the local variance
    of the noise) and n the largest of the six, so the largest channel is 1. An intensity map I → a·I + c (a ≠ 0,
    even a < 0: an inverted image) gives the same descriptor exactly; MR and CT of one patient give similar ones
    where both show an edge. The distance is in voxels: give images of similar voxel size.

    Args:
        volume: a finite (D, H, W) tensor, or a (B, 1, D, H, W) batch.
        radius: the neighbour distance r in voxels.
        sigma: the patch's Gaussian σ in voxels.

    Returns:
        (6, D, H, W) for a 3D input, (B, 6, D, H, W) for a batch.

    Example:
        >>> import torch
        >>> x = torch.zeros(8, 8, 8); x[2:6, 2:6, 2:6] = 100.0
        >>> d = mind(x)
        >>> tuple(d.shape), bool(torch.allclose(d, mind(-3.0 * x + 50.0), atol=1e-5))
        ((6, 8, 8, 8), True)
        >>> round(float(d.amax(dim=0).min()), 6)                 # the largest channel is 1 everywhere
        1.0
    """
    import torch

    from lumbarlab.errors import LumbarLabError

    x = torch.as_tensor(volume)
    single = x.dim() == 3
    if single:
        x = x[None, None]
    if x.dim() != 5 or x.shape[1] != 1:
        raise LumbarLabError(f"mind takes a (D, H, W) volume or a (B, 1, D, H, W) batch, got shape {tuple(x.shape)}.")
    if not x.is_floating_point():
        x = x.float()
    dp = torch.cat([_gauss_blur((x - _shift(x, tuple(radius * o for o in r))) ** 2, sigma) for r in _SIX], dim=1)
    v = dp.mean(dim=1, keepdim=True)
    scale = v.mean(dim=(2, 3, 4), keepdim=True)          # keep V away from 0 (flat regions) and from overflow
    v = torch.maximum(torch.minimum(v, scale * 1000.0), scale * 1e-3 + _EPS)
    d = torch.exp(-dp / v)
    d = d / d.amax(dim=1, keepdim=True)
    return d[0] if single else d


def mind_ssd(a, b, weights=None, radius: int = 1, sigma: float = 0.8):
    """Dissimilarity of two images of one shape by their MIND descriptors: the mean over voxels and the six channels
    of the squared difference (:func:`ssd` of :func:`mind`), dimensionless, 0 for images equal up to an intensity
    map a·I + c. ``weights`` (a (D, H, W) or batch-shaped mask) leave voxels out.

    Example:
        >>> import torch
        >>> x = torch.zeros(10, 10, 10); x[3:7, 3:7, 3:7] = 1.0
        >>> bool(mind_ssd(x, 1 - x) < 1e-10), bool(mind_ssd(x, torch.roll(x, 2, 0)) > 0.01)
        (True, True)
    """
    import torch

    da, db = mind(a, radius, sigma), mind(b, radius, sigma)
    if weights is not None:
        w = torch.as_tensor(weights, dtype=da.dtype, device=da.device)
        weights = w.unsqueeze(0) if da.dim() == 4 else w  # one weight per voxel, for all six channels
    return ssd(da, db, weights)
