"""The opt-in ImageNet weights: conversion from the imgclsmob and official layouts, checked offline."""

import hashlib
import io
import zipfile
from dataclasses import replace

import pytest
import torch
from pytorchcv.models import shufflenet as reference

from shufflenet_viz import imagenet
from shufflenet_viz.imagenet import (CATALOGUE, convert_imgclsmob_state_dict, convert_megvii_state_dict,
                                     fetch_imagenet, find_checkpoint)
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
    with pytest.raises(WeightsError, match="unexpected"):
        convert_megvii_state_dict({"module.features.0.branch_proj.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match="unexpected"):
        convert_megvii_state_dict({"module.features.16.branch_main_1.0.weight": torch.zeros(1)})


def test_catalogue_urls_and_choices():
    assert CATALOGUE["imagenet_osmr_g3_w1"].url == ("https://github.com/osmr/imgclsmob/releases/download/v0.0.244/"
                                                    "shufflenet_g3_w1-1348-ce54f64e.pth.zip")
    assert CATALOGUE["imagenet_official_g8_w0.5"].url.endswith(
        "/91c592561ecb3512b465db1e2c01cedb0f5cbad0/weights/ShuffleNetV1/Group8/models/0.5x.pth.tar")
    assert find_checkpoint(3, 0.5).source == "official"  # the official one where both exist
    assert find_checkpoint(3, 0.5, "osmr").name == "imagenet_osmr_g3_w0.5"
    with pytest.raises(WeightsError, match="available"):
        find_checkpoint(8, 1.0)


def _zipped(state) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    pth = buffer.getvalue()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model.pth", pth)
    return archive.getvalue(), hashlib.sha1(pth).hexdigest()


def test_fetch_verifies_converts_and_registers_a_zipped_release(tmp_path):
    payload, sha1 = _zipped(_reference_model(1, 0.5).state_dict())
    checkpoint = replace(CATALOGUE["imagenet_osmr_g1_w0.5"], sha1=sha1)
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / checkpoint.file_name).write_bytes(payload)
    name = fetch_imagenet(checkpoint, tmp_path / "fetched", mirror=str(tmp_path / "mirror"))
    loaded = load_model(name, tmp_path / "fetched")
    assert name == "imagenet_osmr_g1_w0.5" and len(loaded.classes) == 1000 and loaded.classes[0] == "tench"
    assert loaded.preprocessing.kind == "imagenet" and loaded.preprocessing.input_size == 224
    assert loaded.entry["provenance"]["published_sha1"] == sha1
    assert sorted(p.name for p in (tmp_path / "fetched").iterdir()) == ["imagenet_osmr_g1_w0.5.pt", "manifest.json"]


def test_fetch_refuses_a_bad_checksum_and_changes_nothing(tmp_path):
    payload, _ = _zipped(_reference_model(1, 0.5).state_dict())
    checkpoint = CATALOGUE["imagenet_osmr_g1_w0.5"]
    (tmp_path / checkpoint.file_name).write_bytes(payload)
    offline_source = replace(checkpoint, url=str(tmp_path / "no-such-file"))  # never the real publisher
    with pytest.raises(WeightsError, match="sha1 mismatch"):
        fetch_imagenet(offline_source, tmp_path / "fetched", mirror=str(tmp_path))
    assert not (tmp_path / "fetched").exists() and read_manifest(tmp_path / "fetched") == {}


def test_fetch_offline_fails_clearly_and_writes_nothing(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(imagenet.urllib.request, "urlopen", offline)
    monkeypatch.delenv(imagenet.MIRROR_ENV, raising=False)
    with pytest.raises(WeightsError, match="Offline\\? Point --mirror"):
        fetch_imagenet(CATALOGUE["imagenet_official_g3_w0.5"], tmp_path / "fetched")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("address,loopback_only", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                   ("[::1]", True), ("localhost", True), (None, False), ("", False),
                                                   ("0.0.0.0", False), ("::", False), ("192.168.1.20", False),
                                                   ("lens.example.org", False)])
def test_only_a_server_on_loopback_offers_the_install_unless_its_owner_says(address, loopback_only):
    # Streamlit's server.address unset means every interface: served to others.
    assert imagenet.listens_on_loopback_only(address) is loopback_only
    assert imagenet.install_allowed(address, None) is loopback_only
    assert imagenet.install_allowed(address, True) is True and imagenet.install_allowed(address, False) is False


def test_the_owners_switch_reads_on_and_off_and_refuses_the_rest():
    assert [imagenet.parse_switch(word) for word in ("1", "true", " Yes", "ON", True)] == [True] * 5
    assert [imagenet.parse_switch(word) for word in ("0", "false", "no", "Off", False)] == [False] * 5
    with pytest.raises(ValueError, match="'maybe' is not on or off"):
        imagenet.parse_switch("maybe")


def test_exit_status_says_all_some_or_none():
    def outcomes(*statuses):
        return [imagenet.InstallOutcome(f"m{i}", status, "") for i, status in enumerate(statuses)]

    assert imagenet.exit_status(outcomes(imagenet.INSTALLED, imagenet.ALREADY_THERE)) == imagenet.EXIT_ALL == 0
    assert imagenet.exit_status(outcomes(imagenet.INSTALLED, imagenet.NOT_IN_MIRROR)) == imagenet.EXIT_SOME == 1
    assert imagenet.exit_status(outcomes(imagenet.FAILED, imagenet.NOT_IN_MIRROR)) == imagenet.EXIT_NONE == 2
