"""Rotation matrices for registration tests: known motions to recover."""

from __future__ import annotations

import numpy as np


def rotation_xyz(deg) -> np.ndarray:
    """Rotation by ``deg`` degrees about x, then y, then z (Rz · Ry · Rx), as register_volumes composes it."""
    ax, ay, az = np.radians(deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx
