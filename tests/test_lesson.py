"""The lesson helper: parameters applied (device for the process, seeds, DATA checked) and answers checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab.device import get_device, use_device
from lumbarlab.errors import LumbarLabError
from lumbarlab.lesson import check, setup


def test_setup_sets_the_process_device_and_seeds(capsys):
    try:
        lesson = setup(True, "cpu", 11, "phantom")
        assert lesson.device == torch.device("cpu") == get_device()
        first = (np.random.rand(), torch.rand(1).item())
        setup(True, "cpu", 11, None)
        assert (np.random.rand(), torch.rand(1).item()) == first  # the same seed, the same draws
        assert "device=cpu" in capsys.readouterr().out
        if not torch.cuda.is_available():
            with pytest.raises(LumbarLabError, match="CUDA"):
                setup(True, "cuda", 0, None)
            assert get_device() == torch.device("cpu")  # the failed request left the choice as it was
    finally:
        use_device("auto")


def test_setup_checks_data(tmp_path):
    assert setup(False, "cpu", 0, tmp_path).data == tmp_path
    with pytest.raises(LumbarLabError, match="does not exist"):
        setup(False, "cpu", 0, tmp_path / "absent")
    use_device("auto")


@pytest.mark.parametrize("answer,expected,tolerance,result", [
    (None, 3, 0.0, None), (3, 3, 0.0, True), (2, 3, 0.0, False), (0.51, 0.5, 0.02, True), (0.6, 0.5, 0.02, False),
    (" l4 ", "L4", 0.0, True), ("L5", "L4", 0.0, False), ("x", 0.5, 0.1, False), (np.float32(0.5), 0.5, 0.0, True),
    ([1, 2], [1, 2], 0.0, True),
])
def test_check(answer, expected, tolerance, result, capsys):
    assert check(7, answer, expected, tolerance) is result
    out = capsys.readouterr().out
    assert out.startswith("Exercise 7: ") and ("not answered" in out) == (result is None)
