"""Public lumbar spine datasets: a registry of sources with hashes and licences, download with hash
checks, safe extraction and conversion into lumbarlab's layout.

No code in lumbarlab downloads anything unless a user asks for a dataset::

    lumbarlab fetch --list
    lumbarlab fetch spider [--dest DIR] [--mirror URL]
    lumbarlab fetch buu-lspine --from ~/Downloads/BUU-LSPINE.zip

The converted folder (``index.json``, ``images/``, ``labels/``, ``landmarks/``; its records are typed in
:mod:`lumbarlab.fetch.layout`) is what :mod:`lumbarlab.datasets` reads and what the lessons accept through
their ``DATA`` parameter. Modules: ``registry`` (sources, hashes, licences), ``transfer`` (download, hash, safe
extraction), ``convert`` (each dataset's layout → lumbarlab's), ``install`` (the whole step, atomically).
"""

from lumbarlab.fetch.install import ManualStepRequired, fetch, format_table
from lumbarlab.fetch.registry import DATASETS, Dataset, RemoteFile, get

__all__ = ["DATASETS", "Dataset", "RemoteFile", "get", "fetch", "format_table", "ManualStepRequired"]
