"""Downloading with hash checks (pooch), and extraction that cannot write outside its folder.

pooch downloads into a temporary file and moves it into place only when the transfer finished and the
hash matched; an interrupted or failed transfer leaves nothing behind and the next call starts clean
(pooch does not resume partial transfers; a clean restart is the safe choice for hashed files).
A mirror replaces the dataset's base URL, so institutions can serve the same file names.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from lumbarlab.errors import LumbarLabError

__all__ = ["download", "file_hash", "safe_extract", "check_members", "is_archive"]


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, folder: Path, name: str, known_hash: str | None, progress: bool = True) -> Path:
    """Fetch ``url`` into ``folder/name`` unless a file with the right hash is already there.

    ``known_hash`` is ``"md5:…"`` or ``"sha256:…"`` (or None: no check). A mismatch raises
    LumbarLabError and removes nothing but the failed download.
    """
    import pooch

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.exists() and known_hash is not None:
        algorithm, _, expected = known_hash.partition(":")
        if file_hash(target, algorithm) != expected:
            target.unlink()  # a stale or corrupt earlier download: start clean
    try:
        return Path(pooch.retrieve(url, known_hash=known_hash, fname=name, path=str(folder), progressbar=progress))
    except ValueError as exc:  # pooch's hash mismatch
        raise LumbarLabError(f"{name}: the download does not match the expected hash ({known_hash}); it was discarded. "
                             f"Try again, or check the mirror. ({exc})") from exc
    except Exception as exc:  # requests' connection errors, HTTP errors
        raise LumbarLabError(f"{name}: download from {url} failed ({exc.__class__.__name__}: {exc}). "
                             "Nothing was changed; run the same command again to restart it.") from exc


def _unsafe(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return p.is_absolute() or ".." in p.parts or (len(name) > 1 and name[1] == ":")


def check_members(archive: Path) -> list[str]:
    """Member names of a zip or tar archive; raises if any would land outside the destination
    (absolute paths, ``..``, drive letters, or links in tar archives)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                if m.issym() or m.islnk() or m.isdev():
                    raise LumbarLabError(f"{archive.name}: member {m.name!r} is a link or device; refusing to extract.")
            names = [m.name for m in members]
    else:
        raise LumbarLabError(f"{archive.name}: not a zip or tar archive.")
    bad = [n for n in names if _unsafe(n)]
    if bad:
        raise LumbarLabError(f"{archive.name}: member {bad[0]!r} would be written outside the destination; "
                             "refusing to extract this archive.")
    return names


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a zip or tar archive into ``dest`` after :func:`check_members` accepted every member."""
    check_members(archive)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                out = (dest / info.filename).resolve()
                if root not in out.parents and out != root:
                    raise LumbarLabError(f"{archive.name}: {info.filename!r} escapes the destination.")
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")  # Python's own guard as a second line
    return dest


def is_archive(path: Path) -> bool:
    return path.is_file() and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))
