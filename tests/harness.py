"""Browser harness for dashboards: Voilà on a free port, headless Chromium driven by Playwright.

Reuse for every dashboard:

    def test_my_dashboard(open_dashboard):
        dash = open_dashboard("my_app", ready=".some-selector")
        dash.page.fill(...)
        dash.screenshot("after-move")

The server runs with a throw-away HOME/JUPYTER_* (never the user's), is ready when its log says
"is running at" (a readiness GET would start a kernel of its own), and is stopped at teardown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LUMBARLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]


def require_chromium() -> None:
    """Skip on a developer machine without Chromium; fail in CI, where .ci/run installs it."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None and not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


@dataclass
class Dashboard:
    url: str
    page: object
    folder: Path
    seconds_to_ready: float
    shots: list[Path] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        path = self.folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def read_metric(self, name: str, scope: str = "") -> float:
        """The number shown in the element with ``data-metric=name`` (inside ``scope`` if given)."""
        loc = self.page.locator(f'{scope} .ll-metric[data-metric="{name}"]'.strip()).first
        return float(loc.inner_text())

    def upload(self, css: str, path) -> None:
        """Upload a file through an ipywidgets FileUpload (it opens a chooser from a detached <input>)."""
        with self.page.expect_file_chooser() as chooser:
            self.page.click(css)
        chooser.value.set_files(str(path))

    def wait_text(self, css: str, text: str, exact: bool = False) -> None:
        """Wait until the first element matching ``css`` shows ``text`` (or contains it)."""
        self.page.wait_for_function(
            "([sel, t, exact]) => { const e = document.querySelector(sel);"
            " return e && (exact ? e.textContent.trim() === t : e.textContent.includes(t)); }",
            arg=[css, text, exact],
        )

    def set_number(self, css_class: str, value: float) -> None:
        """Type a value into a widget's number box (a BoundedFloatText with ``css_class``) and commit it."""
        box = self.page.locator(f".{css_class} input").first
        box.fill(f"{value}")
        box.press("Enter")


def stop_process_tree(proc: subprocess.Popen, timeout: float = 20.0) -> list[str]:
    """Stop a server we started and everything it started (kernels): SIGTERM to the server, which shuts its
    kernels down, then a kill for anything still alive after ``timeout`` s. Returns what had to be killed (the
    command lines) — empty when the server stopped its own children, as the tests require."""
    import psutil

    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    _, alive = psutil.wait_procs(family, timeout=timeout)
    survivors = []
    for p in alive:
        try:
            survivors.append(" ".join(p.cmdline()))
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return survivors


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(home: Path) -> dict[str, str]:
    """This process's environment with HOME and every Jupyter/IPython folder under ``home`` (created): a server
    started with it touches nothing of the user's."""
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
            "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
            "JUPYTER_RUNTIME_DIR": str(home / ".local/share/jupyter/runtime"), "IPYTHONDIR": str(home / ".ipython")}


def start_server(cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None,
                 timeout: float = 180.0) -> tuple[subprocess.Popen, float]:
    """Start a Jupyter/Voilà server (output into ``log``) and return it once its log says "is running at" (a
    readiness GET would start a kernel of its own), with its ``perf_counter`` start time."""
    import re
    import socket

    start = time.perf_counter()
    fh = open(log, "w")  # noqa: SIM115 - closed when the process ends
    proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd)
    deadline = time.time() + timeout

    def failed(why: str) -> RuntimeError:
        proc.kill()
        return RuntimeError(f"{cmd[2:4]} {why}:\n{log.read_text()}")

    while "is running at" not in log.read_text():
        if proc.poll() is not None or time.time() > deadline:
            raise failed("did not start")
        time.sleep(0.2)
    # the log line can come before a busy machine lets the socket take connections: wait until it does (a TCP
    # connect, unlike a GET, starts no kernel), and say so with the server's log if it never does
    address = re.search(r"https?://(127\.0\.0\.1|localhost):(\d+)", log.read_text().split("is running at", 1)[1])
    while address:
        try:
            with socket.create_connection((address[1], int(address[2])), timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise failed(f"said it runs at {address[0]} but takes no connections there") from None
            time.sleep(0.2)
    return proc, start


def start_voila(name: str, port: int, env: dict[str, str], log: Path, timeout: float = 180.0) -> tuple[subprocess.Popen, float]:
    """``lumbarlab dashboards NAME`` on ``port``, started as :func:`start_server` starts a server."""
    return start_server([sys.executable, "-m", "lumbarlab", "dashboards", name, "--port", str(port), "--no-browser"],
                        env, log, timeout=timeout)


@pytest.fixture
def open_dashboard(tmp_path, free_port, jupyter_env):
    """Factory: ``open_dashboard(name, ready=CSS)`` → a :class:`Dashboard` whose page shows ``ready``."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    state: dict = {}

    def _open(name: str, ready: str, timeout_s: float = 240.0) -> Dashboard:
        proc, start = start_voila(name, free_port, jupyter_env, tmp_path / "voila.log")
        state["proc"] = proc
        pw = sync_playwright().start()
        state["pw"] = pw
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        state["context"] = context
        page = context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        url = f"http://127.0.0.1:{free_port}/"
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(ready, state="visible")
        return Dashboard(url, page, tmp_path, time.perf_counter() - start)

    yield _open

    if "context" in state:
        state["context"].close()
    if "pw" in state:
        state["pw"].stop()
    if "proc" in state:
        survivors = stop_process_tree(state["proc"])
        assert not survivors, f"still running after the dashboard server stopped: {survivors}"
