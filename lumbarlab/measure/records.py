"""Small typed records for measurement results: they print as a table and convert to dicts or
pandas DataFrames (pandas is optional)."""

from __future__ import annotations

import dataclasses
import json

from lumbarlab.errors import LumbarLabError

__all__ = ["Record"]


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


class Record:
    """Mixin for dataclasses: ``to_dict()``, ``to_json()``, ``to_frame()`` and a readable ``str``."""

    def to_dict(self) -> dict:
        return _plain(self)

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def rows(self) -> list[dict]:
        """One flat dict per item, for tables; records with a list of items override this."""
        return [self.to_dict()]

    def to_frame(self):
        """A pandas DataFrame of :meth:`rows` (install pandas to use it)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise LumbarLabError("to_frame() needs pandas: pip install pandas (or use to_dict()).") from exc
        return pd.DataFrame(self.rows())

    def __str__(self) -> str:
        rows = self.rows()
        if not rows:
            return f"{type(self).__name__}()"
        keys = list(rows[0])
        cells = [[_fmt(r.get(k)) for k in keys] for r in rows]
        widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
        lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
        return f"{type(self).__name__}\n" + "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return "" if v is None else str(v)
