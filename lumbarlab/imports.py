"""Third-party modules that cost seconds to import and are almost never used by the lab, imported on first use.

``import monai`` imports every MONAI submodule, among them ``monai.bundle``, which imports ``jsonschema``; with
``jsonschema[format-nongpl]`` installed (Jupyter's own dependencies ask for it), ``jsonschema`` imports
``rfc3987_syntax``, which compiles about 40 Earley parsers for IRI grammars at import: 1.1 s of a 3.1 s
``import monai`` on 2 CPU cores here, 2–5 s in a kernel started by Voilà (measured: python -X importtime; the
same cost is reported in python-jsonschema/jsonschema#1428 and opendatahub-io/notebooks#3532). The lab never
validates an IRI, yet every dashboard kernel and every lesson paid for it before its first picture.

:func:`defer_iri_grammar` puts a stand-in for ``rfc3987_syntax`` in ``sys.modules`` whose functions import the
real module on their first call and then hand over: ``jsonschema``'s ``iri`` and ``iri-reference`` format checks
give the same answers, they only compile their grammar when first asked. ``import lumbarlab`` calls it; it does
nothing when the module is absent or already imported.

Example:
    >>> import sys
    >>> defer_iri_grammar()  # already done by ``import lumbarlab``; a second call changes nothing
    >>> "rfc3987_syntax.syntax_helpers" in sys.modules or "rfc3987_syntax" not in sys.modules or \\
    ...     isinstance(sys.modules["rfc3987_syntax"], _Deferred)
    True
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

__all__ = ["defer_iri_grammar"]

_NAME = "rfc3987_syntax"


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is used, then imports it and replaces itself."""

    def _real(self) -> types.ModuleType:
        if sys.modules.get(_NAME) is self:
            del sys.modules[_NAME]
        return importlib.import_module(_NAME)

    def __getattr__(self, name: str):
        if name.startswith("__"):  # import machinery and introspection probe dunders: no import for those
            raise AttributeError(name)
        return getattr(self._real(), name)


def defer_iri_grammar() -> None:
    """Make ``rfc3987_syntax`` import on first use instead of when ``jsonschema`` is imported (see the module
    docstring); a no-op if it is not installed or already imported."""
    if _NAME in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(_NAME)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    stand_in = _Deferred(_NAME)
    stand_in.__spec__ = spec
    stand_in.__path__ = list(spec.submodule_search_locations or [])  # its submodules still import normally

    def is_valid_syntax(term: str, value: str) -> bool:
        # jsonschema binds this name at its import (``from rfc3987_syntax import is_valid_syntax``), so it must
        # be a function of ours that hands over on its first call
        return stand_in._real().is_valid_syntax(term, value)

    stand_in.is_valid_syntax = is_valid_syntax
    sys.modules[_NAME] = stand_in
