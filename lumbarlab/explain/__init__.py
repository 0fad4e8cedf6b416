"""Why did the model say that? Saliency for MONAI classifiers and segmenters, 2D and 3D.

One entry point, :func:`explain`, runs any method; the modules hold the pieces:

* :mod:`~lumbarlab.explain.cam` — Grad-CAM, Grad-CAM++, HiResCAM (fast: the backward pass stops at the layer).
* :mod:`~lumbarlab.explain.attribution` — vanilla gradients, SmoothGrad, occlusion; feature maps, filters,
  activation maximization.
* :mod:`~lumbarlab.explain.sanity` — parameter and label randomization (Adebayo et al. 2018), deletion /
  insertion curves.
* :mod:`~lumbarlab.explain.view` — overlays for 2D and slices of 3D.

Example:
    >>> from lumbarlab import explain, zoo
    >>> from lumbarlab.phantom.fast2d import lateral_radiographs
    >>> model = zoo.load("xray-slip")
    >>> image = next(lateral_radiographs(1, seed=3, size=256)).image
    >>> sal = explain.explain(model, image, method="gradcam")      # Saliency: maps in [0, 1], target, probability
    >>> sal.maps[0].shape, float(sal.maps[0].max())
    ((256, 256), 1.0)
    >>> explain.overlay(image, sal.maps[0], alpha=0.4).shape          # RGB for display
    (256, 256, 3)
"""

from __future__ import annotations

from lumbarlab.errors import LumbarLabError
from lumbarlab.explain.attribution import (
    ATTRIBUTION_METHODS,
    feature_maps,
    filters,
    input_gradients,
    maximize_activation,
    occlusion,
)
from lumbarlab.explain.cam import CAM_METHODS, Saliency, candidate_layers, class_activation_map, default_layer
from lumbarlab.explain.sanity import (
    deletion_insertion,
    label_randomization,
    parameter_randomization,
    spearman,
)
from lumbarlab.explain.view import overlay, overlay_slice
from lumbarlab.volume import Volume

__all__ = ["explain", "METHODS", "Saliency", "candidate_layers", "default_layer", "class_activation_map",
           "input_gradients", "occlusion", "feature_maps", "filters", "maximize_activation", "parameter_randomization",
           "label_randomization", "deletion_insertion", "spearman", "overlay", "overlay_slice"]

METHODS = CAM_METHODS + ATTRIBUTION_METHODS


def explain(model, x, method: str = "gradcam", target=None, layer: str | None = None, region=None,
            spatial_dims: int | None = None, **options) -> Saliency | Volume:
    """Saliency of ``model`` for ``x`` by ``method`` (one of :data:`METHODS`); maps in [0, 1] on the input grid.

    Args:
        x: a 2D or 3D image, a batch, (B, C, *spatial), or a :class:`~lumbarlab.volume.Volume`.
        spatial_dims: 2 or 3; default 3 for a Volume, else 2.
        options: go to the method: ``smooth``/``noise`` (smoothgrad), ``patch``/``stride`` (occlusion).

    Returns:
        a :class:`Saliency`; for a Volume and a CAM method, the map as a Volume on the input's grid.
    """
    dims = spatial_dims or (3 if isinstance(x, Volume) else 2)
    if method in CAM_METHODS:
        return class_activation_map(model, x, layer, target, method, region, dims, **options)
    if method == "gradients":
        return input_gradients(model, x, target, region, smooth=0, spatial_dims=dims, **options)
    if method == "smoothgrad":
        return input_gradients(model, x, target, region, smooth=options.pop("smooth", 16), spatial_dims=dims,
                               **options)
    if method == "occlusion":
        return occlusion(model, x, target, spatial_dims=dims, **options)
    raise LumbarLabError(f"unknown method {method!r}; choose from {', '.join(METHODS)}.")
