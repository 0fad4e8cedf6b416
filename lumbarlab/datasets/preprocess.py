"""Preprocessing that returns its transform, so that landmarks, masks and pixel sizes follow the image.

A radiograph of any shape becomes a model's square input by padding to a square (centred) and resizing —
:class:`SquareFit` is that step as an object: it maps images, label images, points and pixel spacings forward,
and points back to the original image (to draw a model's corners on the upload a user gave).

Example:
    >>> import numpy as np
    >>> image = np.zeros((100, 60), np.float32)
    >>> fit = SquareFit.for_shape(image.shape, 50)
    >>> fit.image(image).shape, fit.points([[0.0, 0.0]]).round(2).tolist()
    ((50, 50), [[9.75, -0.25]])
    >>> fit.inverse_points(fit.points([[12.0, 30.0]])).round(6).tolist()
    [[12.0, 30.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = ["SquareFit", "fit_to_model"]


@dataclass(frozen=True)
class SquareFit:
    """Centre-pad an (H, W) image to a square of side max(H, W), then resize it to ``size`` × ``size``.

    Attributes:
        shape: the original (rows, columns).
        size: the output side in pixels.
        offset: (x, y) pixels of padding before the image's first column and row.
        scale: output pixels per padded pixel (size / side).
    """

    shape: tuple[int, int]
    size: int
    offset: tuple[int, int]
    scale: float

    @classmethod
    def for_shape(cls, shape: tuple[int, int], size: int) -> SquareFit:
        h, w = (int(n) for n in shape)
        if h < 1 or w < 1 or size < 1:
            raise LumbarLabError(f"cannot fit an image of shape {shape} to {size}² pixels.")
        side = max(h, w)
        return cls((h, w), int(size), ((side - w) // 2, (side - h) // 2), size / side)

    def image(self, image: np.ndarray, fill: float | None = None) -> np.ndarray:
        """The image padded with ``fill`` (default: the median of its top four rows, the background of a
        radiograph) and resized bilinearly (PIL), float32."""
        from PIL import Image

        image = np.asarray(image, dtype=np.float32)
        if image.shape != self.shape:
            raise LumbarLabError(f"this fit was made for shape {self.shape}, not {image.shape}.")
        side = max(self.shape)
        fill = float(np.median(image[:4])) if fill is None else float(fill)
        square = np.full((side, side), fill, np.float32)
        x0, y0 = self.offset
        square[y0 : y0 + self.shape[0], x0 : x0 + self.shape[1]] = image
        return np.array(Image.fromarray(square).resize((self.size, self.size), Image.BILINEAR), dtype=np.float32)

    def labels(self, labels: np.ndarray) -> np.ndarray:
        """A label image through the same fit (nearest neighbour, padding 0), its dtype kept."""
        from PIL import Image

        labels = np.asarray(labels)
        side = max(self.shape)
        square = np.zeros((side, side), np.int32)
        x0, y0 = self.offset
        square[y0 : y0 + self.shape[0], x0 : x0 + self.shape[1]] = labels
        out = Image.fromarray(square).resize((self.size, self.size), Image.NEAREST)
        return np.asarray(out).astype(labels.dtype)

    def points(self, xy) -> np.ndarray:
        """(…, 2) (x=column, y=row) pixel positions in the original → in the fitted image (pixel centres map
        as PIL's resize maps them: (p + 0.5)·scale − 0.5)."""
        xy = np.asarray(xy, dtype=float)
        return (xy + np.asarray(self.offset, float) + 0.5) * self.scale - 0.5

    def inverse_points(self, xy) -> np.ndarray:
        """Positions in the fitted image → in the original."""
        xy = np.asarray(xy, dtype=float)
        return (xy + 0.5) / self.scale - 0.5 - np.asarray(self.offset, float)

    def spacing(self, spacing: tuple[float, float] | None) -> tuple[float, float] | None:
        """The pixel size (row_mm, col_mm) after the fit, or None when the original's is unknown."""
        return None if spacing is None else (spacing[0] / self.scale, spacing[1] / self.scale)


def fit_to_model(image: np.ndarray, size: int = 256) -> np.ndarray:
    """Centre-pad to a square and resize to ``size``² (bilinear), as the zoo models were trained; see
    :class:`SquareFit` for the transform itself (corners, masks, spacing)."""
    image = np.asarray(image, dtype=np.float32)
    return SquareFit.for_shape(image.shape, size).image(image)
