"""The model zoo: shipped checkpoints verify (hash, metrics, floors), tampered files are refused,
recipes reproduce bit-identical checkpoints, and each X-ray task's loss falls on the phantom."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from lumbarlab import zoo
from lumbarlab.errors import LumbarLabError


class Payload:
    """Stands for arbitrary pickled code in a checkpoint."""


@pytest.fixture(scope="module")
def verified():
    return {name: zoo.verify(name) for name in zoo.RECIPES}


@pytest.mark.parametrize("name", list(zoo.RECIPES))
def test_shipped_model_verifies_and_meets_its_floor(verified, name):
    result = verified[name]
    assert result.hash_ok
    assert result.ok, str(result)
    metric, op, bound = zoo.RECIPES[name].floor
    value = result.metrics[metric]
    assert value >= bound if op == ">=" else value <= bound
    for key, expected in result.expected.items():  # recomputed, not copied from the manifest
        assert result.metrics[key] == pytest.approx(expected, abs=2e-3)


def test_manifest_records_hash_recipe_seeds_and_size():
    entries = zoo.entries()
    assert set(entries) == set(zoo.RECIPES)
    for name, entry in entries.items():
        path = zoo.weights_dir() / entry.file
        assert path.stat().st_size == entry.bytes <= 5 * 2**20
        assert zoo.sha256(path) == entry.sha256
        assert entry.recipe == json.loads(json.dumps(zoo.RECIPES[name].to_dict()))  # as JSON stores it
        seeds = entry.splits
        ranges = [range(s, s + n) for s, n in seeds.values()]
        assert all(not set(a) & set(b) for i, a in enumerate(ranges) for b in ranges[i + 1 :])  # no shared anatomy


@pytest.fixture
def zoo_copy(tmp_path):
    folder = tmp_path / "zoo"
    shutil.copytree(zoo.weights_dir(), folder)
    return folder


def test_changed_checkpoint_is_refused(zoo_copy):
    path = zoo_copy / "xray-vertebrae.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LumbarLabError, match="sha256"):
        zoo.load("xray-vertebrae", zoo_copy)
    result = zoo.verify("xray-vertebrae", zoo_copy)
    assert not result.ok and not result.hash_ok


def test_pickled_code_is_not_loaded_even_with_a_matching_hash(zoo_copy):
    # A checkpoint holding an arbitrary object (here a Python class instance) is refused by
    # weights_only=True, even when someone also rewrote the manifest's hash to match.
    path = zoo_copy / "xray-slip.pt"
    torch.save({"model": {}, "payload": Payload()}, path)
    manifest = json.loads((zoo_copy / "manifest.json").read_text())
    manifest["xray-slip"]["sha256"] = zoo.sha256(path)
    (zoo_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LumbarLabError, match="not a readable lumbarlab checkpoint"):
        zoo.load("xray-slip", zoo_copy)


def test_unknown_name_and_missing_entry(tmp_path):
    with pytest.raises(LumbarLabError, match="choose from"):
        zoo.resolve("xray-magic")
    assert zoo.resolve("xray/segmentation").name == "xray-vertebrae"
    assert zoo.resolve("ct/segmentation").name == "ct-vertebrae"
    with pytest.raises(LumbarLabError, match="several models do segmentation"):
        zoo.resolve("segmentation")  # two modalities segment: a bare task never silently picks one
    with pytest.raises(LumbarLabError, match="zoo train"):
        zoo.load("xray-corners", tmp_path)


def _tiny(name: str) -> zoo.Recipe:
    return dataclasses.replace(zoo.RECIPES[name], image_size=64, train=(100_000, 16), val=(800_000, 8),
                               test=(900_000, 8), epochs=1, batch_size=8)


@pytest.mark.slow
def test_train_reproduces_the_same_checkpoint(tmp_path):
    torch.set_num_threads(1)  # one thread: the same float sums in every run
    try:
        first = zoo.train(_tiny("xray-vertebrae"), tmp_path / "a", progress=False)
        second = zoo.train(_tiny("xray-vertebrae"), tmp_path / "b", progress=False)
    finally:
        torch.set_num_threads(max(1, torch.get_num_threads()))
    assert first.sha256 == second.sha256
    assert first.metrics == second.metrics
    assert set(first.metrics) == {"mean_dice", "mean_iou", "dice_body", "dice_sacrum"}
    entry = zoo.entries(tmp_path / "a")["xray-vertebrae"]
    assert entry.sha256 == zoo.sha256(tmp_path / "a" / "xray-vertebrae.pt")
    assert entry.provenance["train_seconds"] > 0


def test_train_writes_checkpoint_and_manifest_for_each_task(tmp_path):
    for name in ("xray-vertebrae", "xray-corners", "xray-slip"):  # the classifier starts from the segmenter
        entry = zoo.train(_tiny(name), tmp_path, progress=False)
        assert (tmp_path / entry.file).stat().st_size <= 5 * 2**20
        metric = zoo.RECIPES[name].floor[0]
        assert np.isfinite(entry.metrics[metric])
    model = zoo.load("xray-corners", tmp_path)
    coords = zoo.predict_landmarks(model, np.zeros((2, 64, 64), np.float32))
    assert coords.shape == (2, 22, 2)


XRAY_RECIPES = [n for n, r in zoo.RECIPES.items() if r.modality == "xray"]


def _train_steps(model, loss_fn, x, y, steps: int) -> list[float]:
    """The training loss of ``steps`` Adam steps on one fixed batch."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", XRAY_RECIPES)
def test_each_task_loss_falls_on_the_phantom(name):
    from lumbarlab.datasets import XrayDataset, phantom_xrays
    from lumbarlab.zoo.store import build
    from lumbarlab.zoo.training import loss_function

    recipe = zoo.RECIPES[name]
    torch.manual_seed(0)
    split = phantom_xrays(8, seed=5, size=64)
    data = XrayDataset(split, recipe.task)
    x = torch.stack([data[i][0] for i in range(8)])
    y = torch.stack([data[i][1] for i in range(8)])
    losses = _train_steps(build(recipe), loss_function(recipe.task), x, y, steps=25)
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_ct_vertebrae_loss_falls_on_augmented_phantom_patches():
    """The CT recipe's own data path (varied phantom CTs, fresh augmented patches) trains its own network."""
    from lumbarlab.zoo.data import builder
    from lumbarlab.zoo.store import build
    from lumbarlab.zoo.training import loss_function

    recipe = dataclasses.replace(zoo.RECIPES["ct-vertebrae"], image_size=(96, 80, 96), spacing=3.0,
                                 patch=(32, 32, 32), train=(100_000, 2))
    data = builder(recipe).train(recipe)
    x, y = zip(*(data[i] for i in range(4)), strict=True)
    assert {tuple(t.shape) for t in x} == {(1, 32, 32, 32)} and max(int(t.max()) for t in y) <= 7
    again = builder(recipe).train(recipe)
    assert torch.equal(again[0][0], x[0])  # a fresh stream, but the same one for the same seed
    assert not torch.equal(data[0][0], x[0])  # ... and a new crop on the next call (a new epoch)
    x, y = torch.stack(x), torch.stack(y)
    torch.manual_seed(0)
    losses = _train_steps(build(recipe), loss_function(recipe.task, batch_dice=True), x, y, steps=15)
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_zoo_cli_list_and_errors(capsys):
    from lumbarlab.cli import main

    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "xray-slip" in out and "auc=" in out and "MB" in out
    assert main(["zoo", "verify", "xray-magic"]) == 2
    assert "choose from" in capsys.readouterr().err


def test_a_3d_ct_segmentation_recipe_is_declared_trained_and_run(tmp_path, monkeypatch):
    """A CT recipe needs no code of its own: modality, 3D, the volume builder, classes and a patch size."""
    recipe = zoo.Recipe("ct-test", "segmentation", "unet", "tiny", 3, ("mean_dice", ">=", 0.0),
                        "test: L3 and L4 in 3D", modality="ct", spatial_dims=3, dataset="phantom_volumes",
                        classes=(22, 23), image_size=(32, 32, 40), spacing=5.0, patch=(32, 32, 32),
                        train=(100_000, 2), val=(800_000, 1), test=(900_000, 1), epochs=1, batch_size=2,
                        augment=False)
    monkeypatch.setitem(zoo.RECIPES, recipe.name, recipe)
    assert zoo.resolve("ct-test").modality == "ct"
    assert zoo.resolve("ct/segmentation").name == "ct-vertebrae"  # the first CT segmenter keeps the alias
    with pytest.raises(LumbarLabError, match="several models do segmentation"):
        zoo.resolve("segmentation")  # ambiguous: never silently the X-ray model
    entry = zoo.train(recipe, tmp_path, progress=False)
    assert {"mean_dice", "mean_iou", "dice_class1", "dice_class2"} <= set(entry.metrics)
    assert 0.0 <= entry.metrics["mean_dice"] <= 1.0
    predictor = zoo.predictor("ct-test", tmp_path)
    from lumbarlab.datasets import normalize_ct, phantom_ct

    ct = phantom_ct(1, seed=5, shape=(32, 32, 40), spacing=5.0)[0].image
    seg = predictor(ct.with_array(normalize_ct(ct.array)))  # Volume in, Volume out: sliding 32³ windows
    assert seg.shape == ct.shape and seg.spacing == ct.spacing and set(np.unique(seg.array)) <= {0, 1, 2}
    result = zoo.verify("ct-test", tmp_path)
    assert result.hash_ok and result.ok, result


def test_predict_landmarks_follows_the_model_it_is_given():
    """One image (eager) and a batch (frozen trace) give the same corners, and a model whose weights change
    between calls is predicted with its new weights (no trace of old weights is kept)."""
    model = zoo.load("xray-corners")
    images = np.random.default_rng(0).random((2, 256, 256), dtype=np.float32)
    one = zoo.predict_landmarks(model, images[0])
    batch = zoo.predict_landmarks(model, images)
    assert one.shape == (22, 2) and batch.shape == (2, 22, 2)
    np.testing.assert_allclose(one, batch[0], atol=1e-3)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    assert np.abs(zoo.predict_landmarks(model, images[0]) - one).max() > 0.5
    assert np.abs(zoo.predict_landmarks(model, images)[0] - batch[0]).max() > 0.5


def test_ct_augment_ends_the_scan_inside_some_patches():
    """The end-of-scan augmentation blanks one side of a plane: air in the image, background in the labels."""
    from lumbarlab.datasets.ct import _end_of_scan

    rng = np.random.default_rng(0)
    image, labels = torch.ones(1, 16, 16, 24), torch.full((16, 16, 24), 3)
    cut = [_end_of_scan(image, labels, rng, p=1.0) for _ in range(20)]
    for img, lab in cut:
        assert torch.equal(img[0] == 0, lab == 0)  # the blanked side is both air and background
        assert 0 < int((lab == 0).sum()) < lab.numel()
    assert torch.equal(image, torch.ones(1, 16, 16, 24))  # the inputs are left alone
    untouched = [_end_of_scan(image, labels, rng, p=0.0) for _ in range(5)]
    assert all(i is image and lab is labels for i, lab in untouched)
