"""Building and checking independent peers and their auxiliary branches.

Every error names the config field at fault
(``model.peers.members[m]...``).
"""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmengine.model import ModuleList

from ..backbones.auxiliary_branch import AuxiliaryBranch
from ..utils import stage_layers


def check_members(members: Sequence[nn.Module]) -> int:
    """The cohort's number of classes C, after checking that every member
    is a classifier with a linear head and that all share C."""
    num_classes = []
    for m, member in enumerate(members):
        head = getattr(member, 'head', None)
        if not hasattr(head, 'num_classes') or not hasattr(
                head, 'in_channels'):
            raise TypeError(
                f'`model.peers.members[{m}]` must be a classifier with a '
                'linear head that has `num_classes` and `in_channels` '
                f'(e.g. LinearClsHead), got {type(member).__name__} '
                f'with head {type(head).__name__}.')
        num_classes.append(head.num_classes)
        if head.num_classes != num_classes[0]:
            raise ValueError(
                f'`model.peers.members[{m}].head.num_classes` is '
                f'{head.num_classes} but `model.peers.members[0].head.'
                f'num_classes` is {num_classes[0]}: a cohort shares '
                'one label space.')
    return num_classes[0]


def stage_positions(member: nn.Module, m: int,
                    aux_depth: Optional[str]) -> List[int]:
    """Positions in ``out_indices`` of the outputs that are stages of
    member ``m``: all of them with auxiliary branches, else the last.

    Raises:
        TypeError: The backbone has no stages or no ``out_indices``.
        ValueError: ``out_indices`` is not increasing up to the last stage,
            or names one output only while branches need two.
    """
    backbone = member.backbone
    field = f'model.peers.members[{m}].backbone'
    try:
        stages, _ = stage_layers(backbone)
    except TypeError as e:
        raise TypeError(f'`{field}`: {e}') from None
    out = getattr(backbone, 'out_indices', None)
    if out is None:
        raise TypeError(f'`{field}` ({type(backbone).__name__}) has no '
                        '`out_indices`: a cohort member must yield its '
                        'stage outputs.')
    num = len(stages)
    out = [i + num if i < 0 else i for i in out]
    if (any(not 0 <= i < num for i in out) or out != sorted(set(out))
            or out[-1] != num - 1):
        raise ValueError(
            f'`{field}.out_indices` must be increasing stage indices '
            f'from {list(range(num))} ending with the last stage '
            f'{num - 1}, got {tuple(getattr(backbone, "out_indices"))}.')
    if aux_depth is None:
        return [len(out) - 1]
    if len(out) < 2:
        raise ValueError(
            f'`{field}.out_indices` is {tuple(out)}: auxiliary branches '
            'start at the outputs before the last; give at least two, '
            f'e.g. {tuple(range(num))}.')
    return list(range(len(out)))


def build_branches(member: nn.Module, num_classes: int,
                   aux_depth: Optional[str]) -> ModuleList:
    """The auxiliary branches of a member, one after each backbone output
    but the last (:class:`AuxiliaryBranch`); none without ``aux_depth``."""
    if aux_depth is None:
        return ModuleList()
    stages, post = stage_layers(member.backbone)
    num = len(stages)
    out = [i + num if i < 0 else i for i in member.backbone.out_indices]
    return ModuleList(
        AuxiliaryBranch(stages[i + 1:], post, member.head.in_channels,
                        num_classes, aux_depth) for i in out[:-1])
