"""The shipped CIFAR-10 checkpoints against their manifest, and against real CIFAR-10 test images."""

import io
import os
import tarfile

import pytest
import torch
from PIL import Image

from shufflenet_viz.data import CIFAR10_CLASSES, DEFAULT_ARCHIVE, load_cifar10
from shufflenet_viz.inference import classify_tensor
from shufflenet_viz.preprocess import preprocess_image, to_model_input
from shufflenet_viz.train import evaluate
from shufflenet_viz.weights import WEIGHTS_DIR, load_model, read_manifest, sha256_file

SHIPPED = {"cifar10_g1": 1, "cifar10_g3": 3}


@pytest.fixture(scope="module")
def cifar_test():
    if not DEFAULT_ARCHIVE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the CIFAR-10 archive at {DEFAULT_ARCHIVE}")
        pytest.skip(f"CIFAR-10 archive not found at {DEFAULT_ARCHIVE}")
    return load_cifar10(DEFAULT_ARCHIVE, splits=("test",))["test"]


@pytest.mark.parametrize("name,groups", SHIPPED.items())
def test_manifest_matches_the_files(name, groups):
    entry = read_manifest(WEIGHTS_DIR)[name]
    assert (WEIGHTS_DIR / entry["file"]).exists()
    assert sha256_file(WEIGHTS_DIR / entry["file"]) == entry["sha256"]
    assert entry["architecture"]["groups"] == groups and entry["architecture"]["shuffle"] is True
    assert entry["classes"] == list(CIFAR10_CLASSES)
    assert entry["preprocessing"]["kind"] == "cifar"
    assert entry["preprocessing"]["input_size"] == entry["training"]["size"]
    assert entry["training"]["command"].startswith("python -m shufflenet_viz train")
    assert f"--groups {groups}" in entry["training"]["command"]
    assert entry["training"]["wall_time_s"] > 0 and entry["training"]["hardware"]
    metrics = entry["metrics"]
    confusion = torch.tensor(metrics["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == metrics["test_images"] == 10_000
    assert confusion.diag().sum().item() / 10_000 == pytest.approx(metrics["test_accuracy"], abs=1e-4)
    per_class = torch.tensor(list(metrics["per_class_accuracy"].values()))
    assert per_class.mean().item() == pytest.approx(metrics["test_accuracy"], abs=1e-3)  # 1,000 images per class
    assert 0 <= metrics["ablation"]["accuracy_without_shuffle"] <= 1


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_scores_its_manifest_accuracy(name, cifar_test):
    loaded = load_model(name)
    subset = cifar_test.subset(1000, seed=0)
    measured = evaluate(loaded.model, subset, loaded.preprocessing, torch.device("cpu"))["test_accuracy"]
    assert abs(measured - loaded.entry["metrics"]["test_accuracy"]) <= 0.015
    ablation = loaded.entry["metrics"]["ablation"]
    assert measured == pytest.approx(ablation["accuracy_with_shuffle"], abs=1e-9)  # same 1,000 images


def test_inference_preprocessing_is_training_preprocessing(cifar_test):
    """A CIFAR test file opened as a user's photo reaches the model exactly as the test set did in training."""
    loaded = load_model("cifar10_g3")
    with tarfile.open(DEFAULT_ARCHIVE) as archive:
        member = next(m for m in archive if m.name.startswith("test/cat/") and m.name.endswith(".jpg"))
        photo = Image.open(io.BytesIO(archive.extractfile(member).read()))
        photo.load()
    names = sorted(f"{n:04d}" for n in range(1000))
    index = 3 * 1000 + names.index(member.name.split("/")[-1][:-4])  # the test split is sorted by path
    assert cifar_test.labels[index] == CIFAR10_CLASSES.index("cat")
    from_training = to_model_input(cifar_test.images[index:index + 1], loaded.preprocessing)
    from_photo = preprocess_image(photo, loaded.preprocessing)
    assert torch.equal(from_training, from_photo)
    assert classify_tensor(loaded, from_photo).probabilities.sum() == pytest.approx(1.0)
