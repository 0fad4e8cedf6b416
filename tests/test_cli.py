"""The lumbarlab command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lumbarlab", *args], capture_output=True, text=True, timeout=300, env=env)


def test_phantom_command_writes_requested_pathology(tmp_path):
    res = run("phantom", "--out", str(tmp_path), "--seed", "3", "--slip", "L4:30", "--cobb", "15",
              "--fracture", "L1:35", "--pfirrmann", "L4-L5:4", "--bmd", "90", "--n", "2",
              "--shape", "64", "64", "80", "--spacing", "2.5")
    assert res.returncode == 0, res.stderr
    cases = sorted(p.name for p in tmp_path.iterdir())
    assert cases == ["phantom0003", "phantom0004"]
    truth = json.loads((tmp_path / "phantom0003" / "truth.json").read_text())
    assert truth["slip"]["L4"]["slip_percent"] == pytest.approx(30, abs=2)
    assert truth["cobb"]["angle_deg"] == pytest.approx(15, abs=1.5)
    assert truth["vertebrae"]["L1"]["height_loss_percent"] == pytest.approx(35)
    assert truth["discs"]["L4-L5"]["pfirrmann"] == 4
    assert truth["bone_density"] == {"trabecular_hu": 90.0, "category": "osteoporosis"}


@pytest.mark.parametrize("args,message", [
    (["--slip", "L4:300"], "300"),
    (["--slip", "L9:10"], "unknown vertebra"),
    (["--slip", "L4"], "NAME:VALUE"),
    (["--pfirrmann", "L4-L5:9"], "Pfirrmann"),
    (["--pfirrmann", "L4-L5:2.5"], "whole numbers"),
    (["--spacing", "-1"], "positive"),
    (["--n", "0"], "at least 1"),
    (["--cobb", "120"], "Cobb"),
])
def test_impossible_parameters_exit_nonzero_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    res = run("phantom", "--out", str(out), *args)
    assert res.returncode != 0
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not out.exists() or not any(out.iterdir())


def test_info_reports_device_and_folders(tmp_path):
    import os

    env = {**os.environ, "LUMBARLAB_DATA": str(tmp_path / "data"), "LUMBARLAB_DEVICE": "cpu"}
    res = run("info", "--json", env=env)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["device"] == "cpu"
    assert info["data_dir"] == str(tmp_path / "data")
    assert info["versions"]["torch"] != "not installed"
