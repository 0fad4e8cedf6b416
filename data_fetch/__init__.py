"""The former name of :mod:`lumbarlab.fetch`, kept importable while the design card names it.

``import data_fetch``, ``data_fetch.fetch(...)`` and ``from data_fetch.registry import DATASETS`` (likewise
``convert``, ``transfer``) give lumbarlab.fetch's objects and modules; new code imports ``lumbarlab.fetch``.
"""

import sys

from lumbarlab.fetch import (
    DATASETS,
    Dataset,
    ManualStepRequired,
    RemoteFile,
    convert,
    fetch,
    format_table,
    get,
    install,
    registry,
    transfer,
)

# `from data_fetch.convert import …` finds the moved module; `data_fetch.fetch` was the module now named install
_MOVED = {"convert": convert, "fetch": install, "install": install, "registry": registry, "transfer": transfer}
for _name, _module in _MOVED.items():
    sys.modules[f"{__name__}.{_name}"] = _module

__all__ = ["DATASETS", "Dataset", "RemoteFile", "get", "fetch", "format_table", "ManualStepRequired", "convert",
           "install", "registry", "transfer"]
