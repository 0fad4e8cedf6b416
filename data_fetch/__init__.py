"""Public lumbar spine datasets: a registry of sources with hashes and licences, plus download,
verification and conversion into lumbarlab's layout.

The registry and downloaders arrive with the real-data work; the phantom
(:mod:`lumbarlab.phantom`) is the default dataset until then, and no code in lumbarlab
downloads anything unless a user asks for a dataset.
"""

__all__: list[str] = []
