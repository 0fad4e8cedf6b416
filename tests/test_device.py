"""One device decision per process; LUMBARLAB_DEVICE overrides it."""

from __future__ import annotations

import contextlib

import pytest
import torch

from lumbarlab import device
from lumbarlab.errors import LumbarLabError


@pytest.fixture(autouse=True)
def fresh_cache():
    device.get_device.cache_clear()
    yield
    device.get_device.cache_clear()


def test_default_is_cuda_when_present_else_cpu(monkeypatch):
    monkeypatch.delenv("LUMBARLAB_DEVICE", raising=False)
    assert device.get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_decided_once(monkeypatch):
    monkeypatch.setenv("LUMBARLAB_DEVICE", "cpu")
    first = device.get_device()
    monkeypatch.setenv("LUMBARLAB_DEVICE", "nonsense")
    assert device.get_device() is first


@pytest.mark.parametrize("value", ["nonsense", "cuda:7" if torch.cuda.is_available() else "cuda"])
def test_bad_override_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("LUMBARLAB_DEVICE", value)
    with pytest.raises(LumbarLabError, match="LUMBARLAB_DEVICE"):
        device.get_device()


def test_autocast_is_a_no_op_on_cpu(monkeypatch):
    monkeypatch.setenv("LUMBARLAB_DEVICE", "cpu")
    ctx = device.autocast()
    assert isinstance(ctx, contextlib.nullcontext)
    with ctx:
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


def test_limit_cpu_threads_sets_cpu_threads_only_and_can_be_undone():
    before = torch.get_num_threads()
    try:
        assert device.limit_cpu_threads(torch.device("cpu"), 1) == before
        assert torch.get_num_threads() == 1
        assert device.limit_cpu_threads("cuda:0", 3) == 1 and torch.get_num_threads() == 1  # not the CPU: untouched
        assert device.limit_cpu_threads("cpu", before) == 1 and torch.get_num_threads() == before
        with pytest.raises(LumbarLabError, match="at least 1"):
            device.limit_cpu_threads("cpu", 0)
    finally:
        torch.set_num_threads(before)
