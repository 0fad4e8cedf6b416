"""The deferred IRI grammar (lumbarlab.imports): importing MONAI through the lab no longer compiles it, and
jsonschema's IRI checks give the same answers as without the lab."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("rfc3987_syntax")

IRIS = ["http://example.org/straße?q=ü#frag", "urn:isbn:0451450523", "http://exa mple.org/", "//no-scheme/x",
        "relative/path", "http://[::1", "mailto:a@b.c"]
PROBE = """
import json, sys
{prelude}
import jsonschema
checker = jsonschema.FormatChecker()
compiled_at_import = "rfc3987_syntax.syntax_helpers" in sys.modules
answers = {{fmt: [checker.conforms(v, fmt) for v in {iris!r}] for fmt in ("iri", "iri-reference")}}
print(json.dumps({{"compiled_at_import": compiled_at_import, "answers": answers,
                  "compiled_after_use": "rfc3987_syntax.syntax_helpers" in sys.modules}}))
"""


def _probe(prelude: str) -> dict:
    code = PROBE.format(prelude=prelude, iris=IRIS)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_lab_defers_the_grammar_and_iri_checks_answer_as_before():
    plain = _probe("")
    lab = _probe("import lumbarlab")
    assert plain["compiled_at_import"] and not lab["compiled_at_import"]
    assert lab["answers"] == plain["answers"]
    assert lab["answers"]["iri"][0] is True and lab["answers"]["iri"][2] is False  # the checks really check
    assert lab["compiled_after_use"]


def test_monai_imported_through_the_lab_does_not_compile_the_grammar():
    code = ("import sys, lumbarlab, monai, rfc3987_syntax\n"
            "print('rfc3987_syntax.syntax_helpers' in sys.modules)\n"
            "from rfc3987_syntax import is_valid_syntax_iri\n"  # any other name still reaches the real module
            "print(is_valid_syntax_iri('http://example.org/'), type(sys.modules['rfc3987_syntax']).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.split() == ["False", "True", "module"]
