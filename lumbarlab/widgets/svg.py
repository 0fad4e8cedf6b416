"""Tiny SVG plots for widgets that must update in milliseconds (no matplotlib in the loop)."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

__all__ = ["curve_svg", "png_data_uri", "encode_png"]


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) or (H, W, 3) uint8 array (fast zlib level for interactivity)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def png_data_uri(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(rgb)).decode("ascii")


def curve_svg(x: np.ndarray, y: np.ndarray, title: str, xlabel: str, ylabel: str, point: tuple[float, float] | None = None,
              size: int = 220, diagonal: bool = False, css_class: str = "") -> str:
    """A unit-square line plot with an optional highlighted operating point."""
    pad = 34
    w = size - pad - 8

    def sx(v):
        return pad + float(v) * w

    def sy(v):
        return 8 + (1 - float(v)) * w

    n = len(x)
    step = max(n // 400, 1)  # ≤ 400 vertices keep the page light
    pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x[::step], y[::step], strict=True))
    if n and (n - 1) % step:
        pts += f" {sx(x[-1]):.1f},{sy(y[-1]):.1f}"
    parts = [
        f'<svg class="{css_class}" width="{size}" height="{size + 18}" viewBox="0 0 {size} {size + 18}" '
        'xmlns="http://www.w3.org/2000/svg" style="font:10px sans-serif">',
        f'<rect x="{pad}" y="8" width="{w}" height="{w}" fill="white" stroke="#888"/>',
    ]
    if diagonal:
        parts.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="#bbb" stroke-dasharray="4"/>')
    for t in (0, 0.5, 1):
        parts.append(f'<text x="{sx(t):.0f}" y="{size - 12}" text-anchor="middle">{t:g}</text>')
        parts.append(f'<text x="{pad - 4}" y="{sy(t) + 3:.0f}" text-anchor="end">{t:g}</text>')
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="1.8"/>')
    if point is not None:
        parts.append(f'<circle class="operating-point" cx="{sx(point[0]):.1f}" cy="{sy(point[1]):.1f}" r="5" '
                     'fill="#d62728" stroke="white"/>')
    parts.append(f'<text x="{pad + w / 2:.0f}" y="{size + 2}" text-anchor="middle">{html.escape(xlabel)}</text>')
    parts.append(f'<text x="10" y="{8 + w / 2:.0f}" transform="rotate(-90 10 {8 + w / 2:.0f})" '
                 f'text-anchor="middle">{html.escape(ylabel)}</text>')
    parts.append(f'<text x="{pad + w / 2:.0f}" y="{size + 16}" text-anchor="middle" font-weight="bold">'
                 f'{html.escape(title)}</text></svg>')
    return "".join(parts)
