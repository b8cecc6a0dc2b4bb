"""Copies of a shared model (`copies.py`): made while other threads hook and run the original, every copy equals
one made alone and carries no hook, and the original ends as it started (no hooks, eval mode, same tensors).
Bitwise comparisons hold because the tests compute with one intra-op thread, as the app serves (conftest)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import torch

from shufflenet_viz import flow
from shufflenet_viz.attributions import has_hooks
from shufflenet_viz.copies import fold_batch_norms, folded_copy, rebuilt, with_shuffle
from shufflenet_viz.features import forward_hooks
from shufflenet_viz.model import ShuffleUnit, build_model
from shufflenet_viz.weights import freeze

UNIT = "stage3.unit2"
COPIERS = 4
HOOKERS = 4
ROUNDS = 3


@pytest.fixture(scope="module")
def shared():
    """A frozen model as the app shares it, an input, and the activation that reaches `UNIT`."""
    torch.manual_seed(0)
    model = build_model(3, 0.5, 10)
    for module in model.modules():  # non-trivial batch norms, so folding them changes the weights
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.normal_(module.bias, 0.0, 0.1)
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    model = freeze(model)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    activation = flow.activation_at(model, x, "stage3", 1)
    return model, x, activation


def copy_makers(model: torch.nn.Module) -> dict[str, Callable[[], torch.nn.Module]]:
    """Every way the project copies the shared model or one of its units."""
    unit = model.get_submodule(UNIT)
    return {
        "shuffle off": lambda: with_shuffle(model, False),
        "shuffle on": lambda: with_shuffle(model, True),
        "shuffle off, shared tensors": lambda: rebuilt(model, shuffle=False, share=True),
        "attribution copy": lambda: folded_copy(model, channels_last=True),
        "measurement copy": lambda: folded_copy(unit),
        "moved shuffle": lambda: flow.moved_shuffle_unit(unit),
    }


def run_copy(copy: torch.nn.Module, x: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return copy(activation if isinstance(copy, ShuffleUnit) else x)


def test_copies_made_while_others_hook_the_model_equal_copies_made_alone(shared):
    model, x, activation = shared
    makers = copy_makers(model)
    alone = {kind: run_copy(make(), x, activation) for kind, make in makers.items()}
    with torch.no_grad():
        reference = model(x)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    tensors_before = {name: tensor for name, tensor in model.named_parameters()}
    names = [name for name, _ in model.named_modules() if name]

    start = threading.Barrier(COPIERS + HOOKERS)
    copiers_done = threading.Event()
    problems: list[str] = []

    def copier(index: int) -> None:
        try:
            start.wait()
            for round_ in range(ROUNDS):
                for kind, make in makers.items():
                    copy = make()
                    if has_hooks(copy):
                        problems.append(f"copier {index}: the {kind} carries another thread's hooks")
                    if not torch.equal(run_copy(copy, x, activation), alone[kind]):
                        problems.append(f"copier {index}, round {round_}: the {kind} differs from one made alone")
        except Exception as error:  # noqa: BLE001 - every failure of a thread is reported by the test
            problems.append(f"copier {index}: {error!r}")

    def hooker(index: int) -> None:
        seen = []
        try:
            start.wait()
            while not copiers_done.is_set():
                # Hooks on every module at once, then gone again: the dictionaries a deepcopy would walk change.
                with forward_hooks(model, {name: lambda module, inputs, output: seen.append(1) for name in names}):
                    with torch.no_grad():
                        output = model(x)
                if not torch.equal(output, reference):
                    problems.append(f"hooker {index}: a hooked forward changed the model's output")
        except Exception as error:  # noqa: BLE001
            problems.append(f"hooker {index}: {error!r}")
        if not seen:
            problems.append(f"hooker {index}: its hooks never fired")

    copy_threads = [threading.Thread(target=copier, args=(i,)) for i in range(COPIERS)]
    hook_threads = [threading.Thread(target=hooker, args=(i,)) for i in range(HOOKERS)]
    for thread in copy_threads + hook_threads:
        thread.start()
    for thread in copy_threads:
        thread.join(timeout=120)
    copiers_done.set()
    for thread in hook_threads:
        thread.join(timeout=120)

    assert not problems, problems[:10]
    assert not has_hooks(model)
    assert not model.training and not any(module.training for module in model.modules())
    assert all(not parameter.requires_grad for parameter in model.parameters())
    assert dict(model.named_parameters()).keys() == tensors_before.keys()
    assert all(parameter is tensors_before[name] for name, parameter in model.named_parameters())
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())
    assert all(isinstance(module, torch.nn.BatchNorm2d) for name, module in model.named_modules()
               if name.endswith("_bn"))


def test_a_copy_keeps_mode_and_gradients_and_owns_its_tensors_unless_shared(shared):
    model, x, _ = shared
    trainable = build_model(3, 0.5, 10).train()
    copy = with_shuffle(trainable, False)
    assert copy.training and all(p.requires_grad for p in copy.parameters())
    assert not copy.config.shuffle and not any(unit.shuffle.enabled for unit in copy.units())
    assert all(mine.data_ptr() != theirs.data_ptr() for mine, theirs in zip(copy.parameters(), trainable.parameters()))
    shared_copy = rebuilt(model, share=True)
    assert all(mine.data_ptr() == theirs.data_ptr()
               for mine, theirs in zip(shared_copy.parameters(), model.parameters()))
    assert not shared_copy.training and not any(p.requires_grad for p in shared_copy.parameters())
    with torch.no_grad():
        assert torch.equal(shared_copy(x), model(x))


def test_folding_batch_norm_keeps_the_function(shared):
    model, x, activation = shared
    folded = folded_copy(model, channels_last=True)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in folded.modules())
    assert folded.stage2.unit1.compress_conv.weight.is_contiguous(memory_format=torch.channels_last)
    unit = model.get_submodule(UNIT)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(folded_copy(unit)(activation), unit(activation), rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError, match="only a ShuffleNetV1 or a ShuffleUnit"):
        rebuilt(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1)), shuffle=False)


def test_any_other_network_is_copied_without_its_hooks():
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.ReLU()).eval()
    torch.nn.init.uniform_(network[1].weight, 0.5, 1.5)
    handle = network[0].register_forward_hook(lambda module, inputs, output: None)
    copy = rebuilt(network)
    handle.remove()
    assert not has_hooks(copy) and not copy.training
    assert all(mine.data_ptr() != theirs.data_ptr() for mine, theirs in zip(copy.parameters(), network.parameters()))
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        assert torch.equal(copy(x), network(x))
        # nn.Sequential names its parts "0", "1": not a conv / batch-norm pair that folding knows, so kept as is.
        assert isinstance(fold_batch_norms(rebuilt(network))[1], torch.nn.BatchNorm2d)
