"""The opt-in ImageNet weights: conversion from the imgclsmob layout, checked offline with pytorchcv."""

import hashlib
import io
import zipfile

import pytest
import torch
from pytorchcv.models import shufflenet as reference

from shufflenet_viz import imagenet
from shufflenet_viz.imagenet import PUBLISHED, PublishedWeights, convert_imgclsmob_state_dict, fetch_imagenet
from shufflenet_viz.model import build_model
from shufflenet_viz.weights import WeightsError, load_model, read_manifest

REFERENCE_MODELS = {(1, 1.0): reference.shufflenet_g1_w1, (3, 1.0): reference.shufflenet_g3_w1,
                    (1, 0.5): reference.shufflenet_g1_wd2, (3, 0.5): reference.shufflenet_g3_wd2}


def _reference_model(groups, width):
    """A pytorchcv ShuffleNet with random weights and batch-norm statistics of real activations."""
    torch.manual_seed(groups * 10 + int(width * 4))
    model = REFERENCE_MODELS[(groups, width)]()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average: running stats become the batch's statistics
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 224, 224))
    return model.eval()


@pytest.mark.parametrize("groups,width", list(REFERENCE_MODELS))
def test_converted_state_dict_gives_identical_logits(groups, width):
    ref = _reference_model(groups, width)
    ours = build_model(groups, width, 1000).eval()
    ours.load_state_dict(convert_imgclsmob_state_dict(ref.state_dict()))  # strict: every key maps
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, actual = ref(x), ours(x)
    assert expected.abs().max() > 0.1  # a meaningful comparison, not two zero vectors
    assert (expected - actual).abs().max().item() < 1e-5


def test_unknown_keys_are_refused():
    with pytest.raises(WeightsError, match="unexpected"):
        convert_imgclsmob_state_dict({"features.extra.weight": torch.zeros(1)})


def test_published_urls_follow_the_release_pattern():
    assert PUBLISHED[(3, 1.0)].url == ("https://github.com/osmr/imgclsmob/releases/download/v0.0.244/"
                                       "shufflenet_g3_w1-1348-ce54f64e.pth.zip")
    assert len(PUBLISHED) == 6


def _zipped(state) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    pth = buffer.getvalue()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model.pth", pth)
    return archive.getvalue(), hashlib.sha1(pth).hexdigest()


def test_fetch_verifies_converts_and_registers(tmp_path, monkeypatch):
    payload, sha1 = _zipped(_reference_model(1, 0.5).state_dict())
    monkeypatch.setitem(PUBLISHED, (1, 0.5), PublishedWeights("shufflenet_g1_wd2", "v0", "2261", sha1))
    name = fetch_imagenet(1, 0.5, tmp_path, progress=False, download=lambda url, progress: payload)
    loaded = load_model(name, tmp_path)
    assert name == "imagenet_g1_w0.5" and len(loaded.classes) == 1000 and loaded.classes[0] == "tench"
    assert loaded.preprocessing.kind == "imagenet" and loaded.preprocessing.input_size == 224
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_fetch_refuses_a_bad_checksum_and_leaves_weights_unchanged(tmp_path, monkeypatch):
    payload, _ = _zipped(_reference_model(1, 0.5).state_dict())
    with pytest.raises(WeightsError, match="sha1 mismatch"):
        fetch_imagenet(1, 0.5, tmp_path, progress=False, download=lambda url, progress: payload)
    assert list(tmp_path.iterdir()) == [] and read_manifest(tmp_path) == {}


def test_fetch_offline_fails_clearly(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(imagenet.urllib.request, "urlopen", offline)
    with pytest.raises(WeightsError, match="Are you online"):
        fetch_imagenet(3, 1.0, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
