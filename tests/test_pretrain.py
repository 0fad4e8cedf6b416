"""Transfer learning helpers (lumbarlab.pretrain) with known answers: label fractions, weight copying, pretraining
losses, the learning-curve table and its intervals, and the ImageNet path without a download."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.pretrain import (
    IMAGENET_ENV,
    IMAGENET_RESNET18_URL,
    CurvePoint,
    bootstrap_auc,
    dice_per_image,
    evaluate,
    initialise,
    intensity_baseline,
    label_fractions,
    load_imagenet_weights,
    masked_loss,
    paired_difference,
    patch_mask,
    pretrain_contrastive,
    pretrain_masked,
    pretrain_segmentation,
    resnet18,
    stratified_order,
    summarise,
)

LABELS = np.array([0] * 130 + [1] * 70)  # 200 images, 35 % positive


@pytest.fixture(scope="module")
def phantom():
    from lumbarlab.datasets import phantom_xrays

    return phantom_xrays(24, seed=4_000, size=64)


def test_one_percent_is_stratified_with_both_classes_and_the_right_size():
    for seed in range(20):
        s = label_fractions(LABELS, (0.01, 0.1, 1.0), seed=seed)
        assert [len(s[f]) for f in (0.01, 0.1, 1.0)] == [2, 20, 200]
        assert sorted(LABELS[s[0.01]].tolist()) == [0, 1]
        assert abs(LABELS[s[0.1]].sum() - 7) <= 1  # 35 % of 20, within one image
        assert sorted(s[1.0].tolist()) == list(range(200))


def test_fractions_are_nested_and_reproducible():
    a = label_fractions(LABELS, (0.01, 0.05, 0.1, 0.5), seed=3)
    b = label_fractions(LABELS, (0.01, 0.05, 0.1, 0.5), seed=3)
    c = label_fractions(LABELS, (0.01, 0.05, 0.1, 0.5), seed=4)
    assert all(np.array_equal(a[f], b[f]) for f in a)
    assert not np.array_equal(a[0.1], c[0.1])
    assert set(a[0.01]) <= set(a[0.05]) <= set(a[0.1]) <= set(a[0.5])


def test_every_prefix_of_the_order_is_stratified():
    order = stratified_order(LABELS, seed=1)
    counts = np.cumsum(LABELS[order])
    k = np.arange(1, len(order) + 1)
    assert np.all(np.abs(counts - 0.35 * k) <= 1.0)
    assert len(set(order.tolist())) == 200


def test_a_bad_fraction_says_how_to_write_it():
    with pytest.raises(LumbarLabError, match="0.01"):
        label_fractions(LABELS, (1.0, 10.0))


def test_initialise_copies_the_encoder_and_leaves_the_head():
    from lumbarlab.models import EncoderClassifier, build_model, unet_encoder

    torch.manual_seed(1)
    unet = build_model("segmentation", "unet", size="tiny", out_channels=3)
    torch.manual_seed(0)
    clf = EncoderClassifier(2, 1, 2, size="tiny")
    head = {k: v.clone() for k, v in clf.classifier.state_dict().items()}
    before = {k: v.clone() for k, v in clf.encoder.state_dict().items()}
    copied = initialise(clf, unet)
    source = unet_encoder(unet).state_dict()
    assert copied == len(source) > 10
    for k, v in clf.encoder.state_dict().items():
        assert torch.equal(v, source[k]), k
    assert any(not torch.equal(before[k], source[k]) for k in before if before[k].is_floating_point())
    assert all(torch.equal(v, head[k]) for k, v in clf.classifier.state_dict().items())
    assert initialise(clf, None) == 0


def test_initialise_a_unet_from_another_copies_all_but_the_output_layer():
    """CT → MRI style: the same U-Net with another number of classes takes every tensor but the last layer's."""
    from lumbarlab.models import build_model

    ct = build_model("segmentation", "unet", size="tiny", out_channels=7)
    mri = build_model("segmentation", "unet", size="tiny", out_channels=4)
    copied = initialise(mri, ct)
    mismatched = [k for k, v in ct.state_dict().items() if mri.state_dict()[k].shape != v.shape]
    assert mismatched and copied == len(ct.state_dict()) - len(mismatched)
    assert torch.equal(mri.state_dict()["model.0.conv.unit0.conv.weight"], ct.state_dict()["model.0.conv.unit0.conv.weight"])
    with pytest.raises(LumbarLabError, match="same architecture"):
        initialise(torch.nn.Linear(3, 3), ct)


def test_patch_mask_hides_the_asked_share_in_whole_patches():
    m = patch_mask(3, (64, 64), 8, 0.25, torch.Generator().manual_seed(0))
    assert m.shape == (3, 1, 64, 64) and float(m.float().mean()) == 0.25
    blocks = m[:, 0].reshape(3, 8, 8, 8, 8).float()
    assert torch.all(blocks.amin((2, 4)) == blocks.amax((2, 4)))  # each 8×8 square all hidden or all shown
    with pytest.raises(LumbarLabError, match="patch"):
        patch_mask(1, (60, 64), 8, 0.5, torch.Generator())


def test_masked_loss_scores_only_hidden_pixels():
    image = torch.zeros(1, 1, 4, 4)
    restored = image.clone()
    restored[..., 2:, :] = 3.0  # wrong only where the input was visible
    hidden = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    hidden[..., :2, :] = True
    assert float(masked_loss(restored, image, hidden)) == 0.0
    restored[..., 0, 0] = 2.0  # one hidden pixel of eight wrong by 2
    assert float(masked_loss(restored, image, hidden)) == pytest.approx(4 / 8)


def test_masked_pretraining_loss_falls_on_phantom_radiographs(phantom):
    p = pretrain_masked(phantom.images, steps=40, batch_size=8, lr=3e-3, seed=0)
    assert p.kind == "masked" and p.steps == 40 and len(p.losses) == 40
    assert np.mean(p.losses[-8:]) < 0.7 * np.mean(p.losses[:4])


def test_contrastive_pretraining_loss_falls_on_phantom_radiographs(phantom):
    p = pretrain_contrastive(phantom.images, steps=30, batch_size=8, lr=3e-3, seed=0)
    assert len(p.losses) == 30
    assert np.mean(p.losses[-6:]) < np.mean(p.losses[:4])


def test_summary_gives_the_t_interval():
    points = [CurvePoint("random", 0.1, 20, s, a, 0.5, [], 0) for s, a in enumerate([0.6, 0.7, 0.8])]
    s = summarise(points)[0]
    assert (s.init, s.fraction, s.n_labelled, s.seeds) == ("random", 0.1, 20, 3)
    assert s.mean == pytest.approx(0.7) and s.sd == pytest.approx(0.1)
    assert s.high - s.mean == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) = 4.3027


def test_paired_difference_pairs_by_seed():
    points = [CurvePoint(name, 1.0, 9, seed, auc, 0.0, [], 0)
              for name, aucs in (("pre", [0.9, 0.8, 0.7]), ("random", [0.8, 0.7, 0.6])) for seed, auc in enumerate(aucs)]
    mean, low, high, n = paired_difference(points, "pre", "random", 1.0)
    assert n == 3 and mean == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    with pytest.raises(LumbarLabError, match="no seed"):
        paired_difference(points, "pre", "other", 1.0)


def test_bootstrap_of_a_paired_difference_resamples_cases_for_both_arms():
    """A perfect ranker against a constant: the AUC difference is exactly 0.5 on every resample that holds both
    classes, so the interval collapses; one arm alone gives an interval that holds its estimate."""
    y = np.arange(60) % 2
    rng = np.random.default_rng(0)
    points = [CurvePoint("pre", 1.0, 9, s, 1.0, 1.0, [], 0, y + 0.01 * rng.random(60)) for s in (0, 1)]
    points += [CurvePoint("random", 1.0, 9, s, 0.5, 0.5, [], 0, np.zeros(60)) for s in (0, 1)]
    d = bootstrap_auc(points, y, "pre", 1.0, baseline="random", n_resamples=200)
    assert (d.estimate, d.low, d.high) == (0.5, 0.5, 0.5)
    noisy = [CurvePoint("noisy", 1.0, 9, 0, 0.0, 0.0, [], 0, y + rng.normal(0, 1, 60))]
    one = bootstrap_auc(noisy, y, "noisy", 1.0, n_resamples=300)
    assert one.low < one.estimate < one.high and one.high - one.low > 0.05
    with pytest.raises(LumbarLabError, match="no test scores"):
        bootstrap_auc([CurvePoint("old", 1.0, 9, 0, 0.5, 0.5, [], 0)], y, "old", 1.0)


def test_evaluate_scores_do_not_tie_when_the_softmax_saturates():
    """Logits 100 apart saturate a float32 softmax at 1.0 for every image; the logit margin still ranks them."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[0.0] * 4, [1.0] * 4])), net[1].bias.copy_(torch.tensor([0.0, 100.0]))
    x = np.linspace(0, 1, 8)[:, None, None] * np.ones((8, 2, 2))
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert torch.softmax(net(torch.as_tensor(x, dtype=torch.float32)[:, None]), 1)[:, 1].unique().numel() == 1
    e = evaluate(net, x, y)
    assert len(np.unique(e["scores"])) == 8 and e["auc"] == 1.0


def test_intensity_baseline_takes_its_direction_from_the_training_set():
    bright = np.stack([np.full((3, 3), v) for v in (0.1, 0.2, 0.8, 0.9)])
    y = np.array([1, 1, 0, 0])  # darker is the positive class
    assert intensity_baseline(bright, y, bright, y) == 1.0
    assert intensity_baseline(bright, y, bright, 1 - y) == 0.0  # the direction is not re-chosen on the test set


def test_segmentation_can_start_from_another_unet_and_dice_is_per_image():
    x = np.random.default_rng(0).random((4, 32, 32)).astype(np.float32)
    masks = np.zeros((4, 32, 32), int)
    masks[:, 8:24, 8:24] = 1
    source = pretrain_segmentation(x, masks, steps=1, batch_size=2, classes=2, seed=3)
    started = pretrain_segmentation(x, masks, steps=1, batch_size=2, classes=2, seed=0, init=source, lr=1e-12)
    fresh = pretrain_segmentation(x, masks, steps=1, batch_size=2, classes=2, seed=0, lr=1e-12)
    key = "model.0.conv.unit0.conv.weight"
    assert torch.allclose(started.network.state_dict()[key], source.network.state_dict()[key], atol=1e-6)
    assert not torch.allclose(fresh.network.state_dict()[key], source.network.state_dict()[key])
    perfect = torch.nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        perfect.weight.zero_(), perfect.bias.copy_(torch.tensor([1.0, 0.0]))  # predicts background everywhere
    assert dice_per_image(perfect, x, masks, classes=2).tolist() == [0.0] * 4
    assert dice_per_image(perfect, x, np.zeros_like(masks), classes=2).tolist() == [1.0] * 4


def test_learning_curve_is_a_tidy_matched_table(phantom):
    from lumbarlab.pretrain import learning_curve

    x, y = phantom.images[:20], phantom.labels[:20]
    args = dict(fractions=(0.1, 1.0), seeds=(0, 1), steps=2, batch_size=4, rounds=1)
    a = learning_curve({"random": None}, x, y, phantom.images[20:], phantom.labels[20:], **args)
    b = learning_curve({"random": None}, x, y, phantom.images[20:], phantom.labels[20:], **args)
    assert [(p.init, p.fraction, p.seed, p.n_labelled) for p in a] == [
        ("random", 0.1, 0, 2), ("random", 1.0, 0, 20), ("random", 0.1, 1, 2), ("random", 1.0, 1, 20)]
    assert [p.train_loss for p in a] == [p.train_loss for p in b]  # a seed reproduces its run
    assert all(p.scores is not None and len(p.scores) == 4 for p in a)  # kept for bootstraps over test cases


def test_missing_imagenet_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv(IMAGENET_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(LumbarLabError) as err:
        load_imagenet_weights(resnet18())
    message = str(err.value)
    assert IMAGENET_RESNET18_URL in message and IMAGENET_ENV in message and "never downloads" in message
    with pytest.raises(LumbarLabError, match="not found at"):
        load_imagenet_weights(resnet18(), tmp_path / "resnet18.pth")


def _fake_imagenet_file(path, wrap: bool = False):
    """A file laid out as torchvision's ResNet-18: RGB stem, 1000-class fc, random values."""
    torch.manual_seed(7)
    state = resnet18(num_classes=1000, in_channels=3).state_dict()
    torch.save({"state_dict": state} if wrap else state, path)
    return state


def test_a_local_imagenet_file_is_loaded(tmp_path, monkeypatch):
    state = _fake_imagenet_file(tmp_path / "resnet18-f37072fd.pth")
    torch.manual_seed(0)
    model = resnet18()
    fc = model.fc.weight.clone()
    copied = load_imagenet_weights(model, tmp_path / "resnet18-f37072fd.pth")
    own = model.state_dict()
    assert copied == len(own) - 2  # everything but fc.weight and fc.bias
    assert torch.equal(own["layer3.1.conv2.weight"], state["layer3.1.conv2.weight"])
    assert torch.equal(own["conv1.weight"], state["conv1.weight"].sum(1, keepdim=True))  # RGB stem → grey
    assert torch.equal(model.fc.weight, fc)  # the 1000-class head does not fit and stays random
    # the environment variable and a wrapped checkpoint work too
    _fake_imagenet_file(tmp_path / "wrapped.pth", wrap=True)
    monkeypatch.setenv(IMAGENET_ENV, str(tmp_path / "wrapped.pth"))
    assert load_imagenet_weights(resnet18()) == copied


def test_weights_of_another_network_are_refused(tmp_path):
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "other.pth")
    with pytest.raises(LumbarLabError, match="only 1 of"):
        load_imagenet_weights(resnet18(), tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(LumbarLabError, match="not a readable"):
        load_imagenet_weights(resnet18(), tmp_path / "junk.pth")
