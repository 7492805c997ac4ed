"""Compare weights with a module: missing, unexpected, mismatched keys.

Shared by the export (:mod:`mmmcl.apis.export`) and the strict ``Pretrained``
init (:class:`mmmcl.models.initializers.StrictPretrainedInit`), so that both
report a mismatch the same way, with the likely fix.
"""
import re
from typing import List, Mapping, NamedTuple

import torch
import torch.nn as nn

__all__ = [
    'LISTED', 'StateDictDiff', 'class_name', 'describe_diff',
    'diff_state_dict', 'listing'
]

LISTED = 10  # keys shown per kind in a mismatch report
# The third conv of a ResNetV1c/V1d deep stem: mmdet / mmseg, mmpretrain.
_DEEP_STEM = re.compile(r'^stem\.(6\.weight|2\.conv\.weight)$')


class StateDictDiff(NamedTuple):
    """How a state dict fits a module's.

    Attributes:
        missing (list[str]): Keys of the module absent from the weights.
        unexpected (list[str]): Keys of the weights the module lacks.
        mismatched (list[str]): ``'key: (weights shape) vs (module shape)'``.
        num_given (int): Tensors in the weights.
        num_expected (int): Tensors in the module's state dict.
    """
    missing: List[str]
    unexpected: List[str]
    mismatched: List[str]
    num_given: int
    num_expected: int

    @property
    def num_matched(self) -> int:
        """Keys present in both with the same shape."""
        return self.num_expected - len(self.missing) - len(self.mismatched)

    @property
    def exact(self) -> bool:
        """Every key on both sides, every shape equal."""
        return not (self.missing or self.unexpected or self.mismatched)


def class_name(module: nn.Module) -> str:
    """``package.module.Class`` of ``module``."""
    return f'{type(module).__module__}.{type(module).__name__}'


def diff_state_dict(state_dict: Mapping[str, torch.Tensor],
                    expected: Mapping[str, torch.Tensor]) -> StateDictDiff:
    """Compare ``state_dict`` with ``expected`` (a module's state dict)."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f'{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}'
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    return StateDictDiff(missing, unexpected, mismatched, len(state_dict),
                         len(expected))


def listing(title: str, items: List[str]) -> str:
    """``title [n]: first LISTED items, ... (+k more)`` on a new line."""
    more = f', ... (+{len(items) - LISTED} more)' \
        if len(items) > LISTED else ''
    return f'\n  {title} [{len(items)}]: {", ".join(items[:LISTED])}{more}'


def likely_fixes(diff: StateDictDiff) -> List[str]:
    """What most likely makes the weights fit, from the keys' names."""
    missing, unexpected = diff.missing, diff.unexpected
    num_shared = diff.num_expected - len(missing)
    fixes = []
    if any(k.startswith('backbone.') for k in unexpected):
        fixes.append('the weights still carry the `backbone.` prefix: '
                     'export the member with tools/model_converters/'
                     "export_backbone.py, or load with prefix='backbone.'")
    if any(k.startswith(('peers.', 'members.')) for k in unexpected):
        fixes.append('these are a whole cohort\'s weights (`peers.`): '
                     'export one member with tools/model_converters/'
                     'export_backbone.py')
    deep_missing = any(map(_DEEP_STEM.match, missing))
    deep_unexpected = any(map(_DEEP_STEM.match, unexpected))
    if deep_missing and 'conv1.weight' in unexpected:
        fixes.append(
            'the target has a deep stem (`stem.*`: ResNetV1c/V1d) but the '
            'weights a plain one (`conv1`, `bn1`): use the plain-stem type '
            "`ResNet` in the target (mmseg's `r18b`/`r50b` configs do)")
    elif deep_unexpected and 'conv1.weight' in missing:
        fixes.append('the weights have a deep stem (`stem.*`: ResNetV1c/V1d)'
                     ' but the target a plain one (`conv1`, `bn1`): use '
                     "`type='mmpretrain.ResNetV1c'` in the target")
    elif deep_missing and deep_unexpected:
        fixes.append(
            "the deep stems are named differently: mmpretrain's ResNetV1c/"
            "V1d has `stem.<k>.conv`/`stem.<k>.bn`, mmdet's and mmseg's "
            "`stem.<0,1,3,4,6,7>`; build the target as "
            "`type='mmpretrain.ResNetV1c'`")
    elif missing and unexpected and num_shared:
        fixes.append('a same-named class of another package names its '
                     "layers differently (e.g. mmdet's MobileNetV2): use "
                     "the member's own type, e.g. "
                     "`type='mmpretrain.MobileNetV2'` or "
                     "`dict(_scope_='mmmcl', type='CifarResNet')`")
    if not num_shared:
        fixes.append('no key is shared: check --member (the members of a '
                     'cohort may differ) and the backbone family')
    if diff.mismatched or not fixes:
        fixes.append('the architectures differ: give the target the '
                     "exported member's `depth`/`arch`/`widen_factor`/"
                     '`block` (`meta.arch` in the export)')
    return fixes


def describe_diff(diff: StateDictDiff, target: str) -> str:
    """Counts, the first keys of each kind and the likely fix.

    Args:
        diff (StateDictDiff): See :func:`diff_state_dict`.
        target (str): What the weights were compared with, e.g.
            ``'`model.backbone` (mmdet.models.backbones.resnet.ResNet)'``.
    """
    message = (f'The weights do not load into {target}: '
               f'{len(diff.missing)} missing keys, {len(diff.unexpected)} '
               f'unexpected keys, {len(diff.mismatched)} shape mismatches '
               f'({diff.num_given} tensors given, {diff.num_expected} '
               'expected).')
    if diff.missing:
        message += listing('missing (in the target, not the weights)',
                           diff.missing)
    if diff.unexpected:
        message += listing('unexpected (in the weights, not the target)',
                           diff.unexpected)
    if diff.mismatched:
        message += listing('shape mismatches (weights vs target)',
                           diff.mismatched)
    return f'{message}\nLikely fix: {"; or ".join(likely_fixes(diff))}.'
