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
