"""Weights are trusted only after their sha256 matches the manifest, and then unpickled with
weights_only=True; every other case is refused with a message naming the file, and `load_all` keeps
serving the models that verify. Each test builds tiny checkpoints in its own folder and breaks them there."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from shufflenet_viz import weights
from shufflenet_viz.model import build_model
from shufflenet_viz.preprocess import Preprocessing
from shufflenet_viz.weights import WeightsError, load_all, load_model, sha256_file, write_manifest_entry

CLASSES = tuple(f"class{i}" for i in range(10))
PROBE = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def save_checkpoint(folder: Path, file: str, groups: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(groups=groups, width=0.25, num_classes=10).eval()
    torch.save(model.state_dict(), folder / file)
    return model


def entry_for(path: Path, groups: int, file: str | None = None) -> dict:
    return {"file": file or path.name, "sha256": sha256_file(path), "dataset": "tiny",
            "architecture": {"groups": groups, "width": 0.25, "shuffle": True}, "classes": list(CLASSES),
            "preprocessing": Preprocessing.cifar(32).to_dict()}


@pytest.fixture
def originals(tmp_path) -> dict[str, torch.nn.Module]:
    """Builds weights/ with two verified tiny models, tiny_g1 and tiny_g3; returns the models saved."""
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    models = {}
    for name, groups, seed in (("tiny_g1", 1, 1), ("tiny_g3", 3, 3)):
        models[name] = save_checkpoint(weights_dir, f"{name}.pt", groups, seed)
        write_manifest_entry(name, entry_for(weights_dir / f"{name}.pt", groups), weights_dir)
    return models


@pytest.fixture
def folder(originals, tmp_path) -> Path:
    """The weights folder `originals` built."""
    return tmp_path / "weights"


@pytest.fixture
def torch_loads(monkeypatch) -> list[dict]:
    """Every call of torch.load made by the weights module, with its keyword arguments."""
    calls = []
    real_load = torch.load

    def spy(source, *args, **kwargs):
        calls.append({"source": source, **kwargs})
        return real_load(source, *args, **kwargs)

    monkeypatch.setattr(weights.torch, "load", spy)
    return calls


def set_entry(folder: Path, name: str, **changes) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["models"][name].update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def assert_refused_naming(folder: Path, name: str, expected: str, torch_loads: list[dict]) -> None:
    """load_model refuses `name` with `expected` in its message without unpickling anything, and load_all
    still serves the other model with one problem message for this one."""
    with pytest.raises(WeightsError) as caught:
        load_model(name, folder)
    assert expected in str(caught.value)
    assert torch_loads == []
    loaded, problems = load_all(folder)
    other = ({"tiny_g1", "tiny_g3"} - {name}).pop()
    assert set(loaded) == {other} and set(problems) == {name}
    assert expected in problems[name]
    assert len(torch_loads) == 1 and torch_loads[0]["weights_only"] is True


def test_verified_models_load_with_weights_only_and_are_frozen(folder, originals, torch_loads):
    loaded, problems = load_all(folder)
    assert problems == {} and set(loaded) == {"tiny_g1", "tiny_g3"}
    assert len(torch_loads) == 2 and all(call["weights_only"] is True for call in torch_loads)
    for name, model in loaded.items():
        assert model.classes == CLASSES and model.groups == int(name[-1])
        assert not model.model.training
        assert not any(parameter.requires_grad for parameter in model.model.parameters())
        with torch.no_grad():
            assert torch.equal(model.model(PROBE), originals[name](PROBE))


def test_tampered_file_is_refused_before_unpickling(folder, torch_loads):
    path = folder / "tiny_g1.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert_refused_naming(folder, "tiny_g1", f"{path} does not match the sha256", torch_loads)


def test_truncated_file_is_refused_before_unpickling(folder, torch_loads):
    path = folder / "tiny_g3.pt"
    path.write_bytes(path.read_bytes()[:1000])
    assert_refused_naming(folder, "tiny_g3", f"{path} does not match the sha256", torch_loads)


def test_swapped_files_are_refused_before_unpickling(folder, torch_loads):
    first, second = folder / "tiny_g1.pt", folder / "tiny_g3.pt"
    shutil.copyfile(second, first)  # g1's name, g3's weights
    assert_refused_naming(folder, "tiny_g1", f"{first} does not match the sha256", torch_loads)


def test_pickle_payload_with_matching_hash_is_still_only_weights_only_loaded(folder, torch_loads):
    """Even a file whose hash was (wrongly) recorded is unpickled with weights_only=True: code in it
    never runs, and the result is refused as not a state dict."""
    path = folder / "tiny_g1.pt"
    torch.save({"payload": os.system}, path)  # a pickle that references a callable
    set_entry(folder, "tiny_g1", sha256=sha256_file(path))
    with pytest.raises(WeightsError, match="is not a loadable state dict"):
        load_model("tiny_g1", folder)
    assert [call["weights_only"] for call in torch_loads] == [True]


def test_missing_file_is_refused_by_name(folder, torch_loads):
    (folder / "tiny_g3.pt").unlink()
    assert_refused_naming(folder, "tiny_g3", f"{folder / 'tiny_g3.pt'} is missing", torch_loads)


def test_missing_manifest_entry_is_refused_naming_the_manifest(folder, torch_loads):
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["models"]["tiny_g3"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError) as caught:
        load_model("tiny_g3", folder)
    assert str(caught.value) == f"no model named 'tiny_g3' in {folder / 'manifest.json'} (known: tiny_g1)"
    assert torch_loads == []
    loaded, problems = load_all(folder)
    assert set(loaded) == {"tiny_g1"} and problems == {}  # a file with no entry is never offered


def test_corrupt_manifest_is_one_problem_naming_it(folder, torch_loads):
    (folder / "manifest.json").write_text('{"format": 1, "models": ')
    loaded, problems = load_all(folder)
    assert loaded == {} and list(problems) == ["manifest.json"]
    assert str(folder / "manifest.json") in problems["manifest.json"] and torch_loads == []


@pytest.mark.parametrize("where", ["parent", "absolute", "subfolder"])
def test_manifest_pointing_outside_weights_is_refused(folder, torch_loads, where):
    """The escaping file is a valid checkpoint with the right hash, so only the path rule stops it."""
    outside = {"parent": folder.parent, "absolute": folder.parent / "elsewhere", "subfolder": folder / "sub"}[where]
    outside.mkdir(exist_ok=True)
    save_checkpoint(outside, "x.pt", groups=1, seed=1)
    file = {"parent": "../x.pt", "absolute": str(outside / "x.pt"), "subfolder": "sub/x.pt"}[where]
    set_entry(folder, "tiny_g1", file=file, sha256=sha256_file(outside / "x.pt"))
    assert_refused_naming(folder, "tiny_g1", f"points outside {folder.resolve()} ({file!r})", torch_loads)


def test_symlink_in_weights_to_a_file_outside_is_refused(folder, torch_loads):
    outside = folder.parent / "x.pt"
    save_checkpoint(folder.parent, "x.pt", groups=1, seed=1)
    (folder / "link.pt").symlink_to(outside)
    set_entry(folder, "tiny_g1", file="link.pt", sha256=sha256_file(outside))
    assert_refused_naming(folder, "tiny_g1", "points outside", torch_loads)


def test_symlink_to_a_sibling_is_held_to_the_manifests_hash(folder, torch_loads):
    (folder / "tiny_g1.pt").unlink()
    (folder / "tiny_g1.pt").symlink_to(folder / "tiny_g3.pt")
    assert_refused_naming(folder, "tiny_g1", "does not match the sha256", torch_loads)


def test_entry_without_file_or_hash_is_refused(folder, torch_loads):
    set_entry(folder, "tiny_g1", file="")
    assert_refused_naming(folder, "tiny_g1", "manifest entry 'tiny_g1' names no file", torch_loads)
    set_entry(folder, "tiny_g1", file="tiny_g1.pt", sha256=None)
    with pytest.raises(WeightsError, match="does not match the sha256"):
        load_model("tiny_g1", folder)


def test_checkpoint_that_does_not_fit_its_architecture_is_refused(folder, torch_loads):
    path = folder / "tiny_g1.pt"
    set_entry(folder, "tiny_g1", architecture={"groups": 3, "width": 0.25, "shuffle": True})
    with pytest.raises(WeightsError, match=f"{path} does not fit the architecture in its manifest entry"):
        load_model("tiny_g1", folder)


def test_folder_named_as_checkpoint_is_refused_by_name(folder):
    (folder / "tiny_g1.pt").unlink()
    (folder / "tiny_g1.pt").mkdir()
    loaded, problems = load_all(folder)
    assert set(loaded) == {"tiny_g3"} and "tiny_g1.pt" in problems["tiny_g1"]


def test_file_replaced_after_its_hash_was_checked_is_not_loaded(folder, originals, monkeypatch):
    path = folder / "tiny_g1.pt"
    genuine_hash = sha256_file

    def hash_then_swap(target):
        digest = genuine_hash(target)
        save_checkpoint(folder, "tiny_g1.pt", groups=1, seed=99)  # swapped in after the check
        return digest

    monkeypatch.setattr(weights, "sha256_file", hash_then_swap)
    try:
        model = load_model("tiny_g1", folder)
    except WeightsError:
        return
    with torch.no_grad():
        assert torch.equal(model.model(PROBE), originals["tiny_g1"](PROBE)), f"{path} loaded unverified"
