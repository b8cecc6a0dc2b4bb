"""Copies of a model, or of one of its units, made while other threads use and hook the original.

The app loads each model once and every session runs it; a session that needs it changed (the shuffle switched
off, batch norm folded into the convolutions, weights channels-last, the shuffle moved across the depthwise conv)
works on a copy. Every copy is rebuilt from the architecture (the model's config, a unit's constructor
arguments) on the meta device and handed the original's tensors, cloned or shared read-only. A plain
`copy.deepcopy` would walk each module's hook dictionaries, which another session may be changing at that moment
("dictionary changed size during iteration"), and would carry that session's hooks into the copy. Other networks
(the attributions accept any module) are deep-copied with every hook dictionary swapped for an empty one
beforehand, so none of them is walked either.
"""

from __future__ import annotations

import copy as copying
from collections.abc import Mapping
from dataclasses import replace
from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from .model import ShuffleNetV1, ShuffleUnit, UnitLayout

Copyable = TypeVar("Copyable", bound=nn.Module)

# (conv, batch norm) pairs that follow each other with nothing between, by attribute name on a stem or unit.
_FOLDABLE = (("conv", "bn"), ("compress_conv", "compress_bn"), ("depthwise_conv", "depthwise_bn"),
             ("expand_conv", "expand_bn"))
# Every per-module hook registry of nn.Module.
_HOOK_DICTIONARIES = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                      "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
                      "_backward_pre_hooks", "_state_dict_hooks", "_state_dict_pre_hooks",
                      "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def _hook_free_deepcopy(module: nn.Module) -> nn.Module:
    """`copy.deepcopy` of a module of any kind with no hook dictionary walked or copied: each is mapped to a new
    empty one in the memo before the copy starts (taking a dictionary's reference does not iterate it)."""
    memo = {}
    for part in module.modules():
        for name in _HOOK_DICTIONARIES:
            hooks = part.__dict__.get(name)
            if hooks is not None:
                memo[id(hooks)] = type(hooks)()
    return copying.deepcopy(module, memo)


def _skeleton(module: nn.Module, shuffle: bool | None, layout: UnitLayout | None) -> nn.Module:
    """A module of `module`'s architecture, with the shuffle and a unit's layout changed; empty (meta device) for
    this project's networks."""
    with torch.device("meta"):
        if isinstance(module, ShuffleNetV1):
            if layout is not None:
                raise ValueError("a whole model takes its layout from its config; only a unit can be relaid")
            return ShuffleNetV1(module.config if shuffle is None else replace(module.config, shuffle=shuffle))
        if isinstance(module, ShuffleUnit):
            return ShuffleUnit(
                module.compress_conv.in_channels, module.branch_channels + module.shortcut_channels, module.groups,
                module.stride, group_first_conv=module.compress_conv.groups == module.groups,
                shuffle=module.shuffle.enabled if shuffle is None else shuffle,
                layout=module.layout if layout is None else layout)
    if shuffle is not None or layout is not None:
        raise TypeError(f"only a ShuffleNetV1 or a ShuffleUnit has a shuffle to switch, not {type(module).__name__}")
    return _hook_free_deepcopy(module)


def rebuilt(module: Copyable, *, shuffle: bool | None = None, layout: UnitLayout | None = None,
            tensors: Mapping[str, torch.Tensor] | None = None, share: bool = False) -> Copyable:
    """A new model or unit with `module`'s architecture, weights, mode and requires_grad, and none of its hooks.

    `shuffle` switches every channel shuffle on or off, `layout` relays a unit; `tensors` replaces some of the
    state by name. The weights are cloned, or with `share` the very tensors of `module` (read-only: the copy must
    then never be changed in place, or the original changes with it).
    """
    copy = _skeleton(module, shuffle, layout)
    state = {name: tensor if share else tensor.clone() for name, tensor in module.state_dict().items()}
    state.update(tensors or {})
    copy.load_state_dict(state, assign=True)
    for mine, theirs in zip(copy.parameters(), module.parameters()):
        mine.requires_grad_(theirs.requires_grad)
    return copy.train(module.training)


def with_shuffle(model: ShuffleNetV1, enabled: bool) -> ShuffleNetV1:
    """A copy of `model` (same weights, cloned) whose channel shuffles are switched on or off; a model may be
    shared between sessions, and the switch must not leak."""
    return rebuilt(model, shuffle=enabled)


@torch.no_grad()
def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold every eval-mode batch norm into the convolution before it, in place: call it on a copy only.

    In eval mode a BN is a fixed per-channel scale and shift, so conv then BN is one conv with scaled weights and
    a bias: the same function (up to float rounding), without BN's own forward and backward passes (a quarter of a
    gradient step at 224x224, and the slowest step of a Jacobian). The BN becomes an Identity under the same name,
    so hooks and Captum's layers address the same modules.
    """
    for module in list(model.modules()):
        for conv_name, bn_name in _FOLDABLE:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d) or bn.training:
                continue
            requires_grad = conv.weight.requires_grad
            conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                          bn.eps, bn.weight, bn.bias)
            conv.weight.requires_grad_(requires_grad)
            conv.bias.requires_grad_(requires_grad)
            setattr(module, bn_name, nn.Identity())
    return model


def folded_copy(module: Copyable, channels_last: bool = False) -> Copyable:
    """An eval-mode copy of `module` with every batch norm folded into its convolution (`fold_batch_norms`),
    its weights channels-last when asked (faster batched passes with gradients on the CPU)."""
    copy = fold_batch_norms(rebuilt(module).eval())
    return copy.to(memory_format=torch.channels_last) if channels_last else copy
