"""Shared tail of the benchmarks: print the JSON result and optionally write it to a file."""

from __future__ import annotations

import json


def emit(result: dict, out: str | None) -> None:
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        with open(out, "w") as fh:
            fh.write(text + "\n")
