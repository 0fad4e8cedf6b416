"""Input handling shared by the metrics: torch tensors or numpy arrays in, checked numpy out."""

from __future__ import annotations

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = ["as_array", "check_same_shape", "check_finite"]


def as_array(x, name: str = "input", dtype=None) -> np.ndarray:
    """A numpy copy-free view of a numpy array, torch tensor (any device) or sequence."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise LumbarLabError(f"{name} cannot be read as a numeric array ({exc}).") from exc
    return arr


def check_finite(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise LumbarLabError(f"{name} holds {bad} NaN or infinite value(s); remove or impute them first.")
    return arr


def check_same_shape(a: np.ndarray, b: np.ndarray, names=("y_true", "y_pred")) -> None:
    if a.shape != b.shape:
        raise LumbarLabError(f"{names[0]} has shape {a.shape} but {names[1]} has shape {b.shape}; they must match.")
