"""`lumbarlab lab` starts JupyterLab on localhost with a token, opening the first lesson, and stopping it stops
everything it started (its kernels too)."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import REPO
from harness import start_server, stop_process_tree


def _get(url: str) -> int:
    req = urllib.request.Request(url)
    try:
        with urllib.request.build_opener(urllib.request.HTTPHandler()).open(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.server
def test_lab_serves_with_token(free_port, jupyter_env, tmp_path):
    token = "lumbarlab-test-token"
    env = {**jupyter_env, "JUPYTER_TOKEN": token}
    log = tmp_path / "lab.log"
    proc, _ = start_server([sys.executable, "-m", "lumbarlab", "lab", "--port", str(free_port), "--no-browser"],
                           env, log, cwd=REPO, timeout=120)
    try:
        text = log.read_text()
        assert f"127.0.0.1:{free_port}" in text  # localhost only
        base = f"http://127.0.0.1:{free_port}"
        assert _get(f"{base}/lab?token={token}") == 200
        with urllib.request.urlopen(f"{base}/api/contents/notebooks/00_start_here.ipynb?token={token}", timeout=5) as r:
            assert r.status == 200
        # without the token the API refuses
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            status = opener.open(f"{base}/api/contents", timeout=5).status
        except urllib.error.HTTPError as err:
            status = err.code
        assert status in (302, 403)
        # a kernel, as a lesson would start one: stopping the command must stop it too
        req = urllib.request.Request(f"{base}/api/kernels?token={token}", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 201
        import psutil

        deadline = time.time() + 60
        while time.time() < deadline and not psutil.Process(proc.pid).children(recursive=True):
            time.sleep(0.5)
        assert psutil.Process(proc.pid).children(recursive=True), "the kernel did not start"
        # the command became the server (exec): the pid we started is JupyterLab itself
        assert "jupyter" in " ".join(psutil.Process(proc.pid).cmdline())
    finally:
        survivors = stop_process_tree(proc)
    assert not survivors, f"still running after `lumbarlab lab` stopped: {survivors}"
