"""fetch → verify → convert → swap into place.

Everything is built in a temporary folder beside the destination; only a complete conversion replaces
``<dest>/<name>`` (the old copy is renamed away first and removed after the new one is in place), so a
failed or interrupted fetch leaves a good dataset where it was. Downloads are kept in
``<dest>/.downloads/<name>`` so a second run does not transfer verified files again.
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from pathlib import Path

from lumbarlab.errors import LumbarLabError
from lumbarlab.fetch.convert import CONVERTERS
from lumbarlab.fetch.layout import read_index
from lumbarlab.fetch.registry import DATASETS, Dataset, get
from lumbarlab.fetch.transfer import download, file_hash, is_archive, safe_extract

__all__ = ["fetch", "ManualStepRequired", "format_table", "default_dest"]


class ManualStepRequired(LumbarLabError):
    """The dataset cannot be downloaded automatically; the message says what to do."""


def default_dest() -> Path:
    from lumbarlab.paths import data_dir

    return data_dir()


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "?"


def format_table() -> str:
    """The registry as a text table: name, modality, size, licence, manual or not."""
    rows = [("name", "modality", "size", "license", "access")]
    for d in DATASETS.values():
        rows.append((d.name, d.modality.split(" (")[0], _human(d.size_bytes), d.license.split(",")[0],
                     "manual" if d.manual else "direct"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def _sources(ds: Dataset, dest: Path, mirror: str | None, progress: bool) -> tuple[list[Path], dict]:
    base = (mirror.rstrip("/") + "/") if mirror else ds.base_url
    folder = dest / ".downloads" / ds.name
    files, hashes = [], {}
    for f in ds.files:
        try:
            path = download(base + f.path, folder, Path(f.path).name, f.hash, progress)
        except LumbarLabError as exc:
            if f.hash and "hash" in str(exc):  # say where the expected hash came from, so a user can judge it
                raise LumbarLabError(f"{exc} The registry's hash is: {f.hash_source or 'unattributed'}.") from exc
            raise
        files.append(path)
        hashes[path.name] = {"sha256": file_hash(path), "registry": f.hash, "registry_source": f.hash_source}
    return files, hashes


def fetch(name: str, dest: str | Path | None = None, mirror: str | None = None, from_path: str | Path | None = None,
          progress: bool = True) -> Path:
    """Fetch dataset ``name`` (or convert the copy at ``from_path``) into ``<dest>/<name>``; returns that folder.

    Raises :class:`ManualStepRequired` (with the steps) for a manual dataset without ``from_path``, and
    LumbarLabError for a failed download, a hash mismatch, an unsafe archive or a failed conversion —
    in every case the destination stays as it was.
    """
    ds = get(name)
    dest = Path(dest) if dest is not None else default_dest()
    dest.mkdir(parents=True, exist_ok=True)
    if from_path is None and not ds.direct:
        raise ManualStepRequired(f"{ds.name} needs a manual step: {ds.manual}")
    work = Path(tempfile.mkdtemp(prefix=f".work-{ds.name}-", dir=dest))
    try:
        raw = work / "raw"
        raw.mkdir()
        if from_path is not None:
            source = Path(from_path)
            if not source.exists():
                raise LumbarLabError(f"{source}: no such file or folder.")
            inputs, hashes = [source], {}
            if source.is_file():
                hashes[source.name] = {"sha256": file_hash(source), "registry": None}
        else:
            inputs, hashes = _sources(ds, dest, mirror, progress)
        for item in inputs:
            if item.is_dir():
                raw = item  # convert in place of a copy: converters only read their source
            elif is_archive(item):
                safe_extract(item, raw)
            else:
                shutil.copy2(item, raw / item.name)
        out = work / "out"
        out.mkdir()
        cases = CONVERTERS[ds.converter](raw, out)
        index = {
            "dataset": ds.name, "title": ds.title, "modality": ds.modality, "task": ds.task, "license": ds.license,
            "citation": ds.citation, "homepage": ds.homepage, "converted": datetime.date.today().isoformat(),
            "source": str(from_path) if from_path is not None else (mirror or ds.base_url),
            "downloads": hashes, "cases": cases,
        }
        (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
        read_index(out)  # every record must read back as the Datasets will read it, before anything is swapped
        target = dest / ds.name
        old = None
        if target.exists():
            old = dest / f".old-{ds.name}-{work.name[-8:]}"
            target.rename(old)
        out.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        unpinned = [n for n, h in hashes.items() if not h["registry"]]
        if unpinned and from_path is None:
            print(f"note: the registry has no published hash for {', '.join(unpinned)}; their sha256 is recorded in "
                  f"{target / 'index.json'} — pin it in lumbarlab/fetch/registry.py.")
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)
