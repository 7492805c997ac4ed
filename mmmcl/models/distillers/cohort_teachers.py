"""The teachers of a cohort: targets built from the peers, by name."""
from typing import Dict, List, Optional, Union

import torch.nn as nn
from mmengine.model import ModuleDict
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs
from .cohort_specs import SOURCES, part_cfg

Target = Union[Tensor, List]


def check_teacher(name: str, spec: dict) -> dict:
    """``model.teachers[name]`` with its defaults."""
    field = f'`model.teachers.{name}'
    unknown = set(spec) - {'target', 'peers', 'source', 'ce_weight'}
    if 'target' not in spec or unknown:
        raise ValueError(f'{field}` must be dict(target=..., peers=None, '
                         f"source='online', ce_weight=0.), got keys "
                         f'{sorted(spec)}.')
    spec = {**dict(peers=None, source='online', ce_weight=0.), **spec}
    if spec['source'] not in SOURCES:
        raise ValueError(f'{field}.source` must be one of {SOURCES}, '
                         f'got {spec["source"]!r}.')
    return spec


class CohortTeachers(ModuleDict):
    """Name -> target (``model.teachers``), each reading some peers.

    A teacher is ``dict(target=..., peers=None, source='online',
    ce_weight=0.)``: the target config (its ``num_classes`` and
    ``stage_channels`` filled in when it takes them), the peers it reads
    (all for None), the ``'online'`` or ``'temporal_mean'`` outputs, and the
    weight of its own CE. A target gives logits (B, C) of its own or one
    target per peer it reads (a list).

    Args:
        teachers (dict[str, dict], optional): The teachers' configs.
        **fill: Arguments a target takes that its config leaves unset.
    """

    def __init__(self, teachers: Optional[Dict[str, dict]], **fill) -> None:
        specs = {
            name: check_teacher(name, spec)
            for name, spec in (teachers or {}).items()
        }
        super().__init__({
            name: MODELS.build(part_cfg(spec['target'], **fill))
            for name, spec in specs.items()
        })
        self.specs = specs

    def reads(self, source: str) -> bool:
        """Whether a teacher reads ``source`` (``'temporal_mean'``...)."""
        return any(s['source'] == source for s in self.specs.values())

    def target(self, name: str, outputs: PeerOutputs,
               averaged: Optional[PeerOutputs]) -> Target:
        """Teacher ``name``'s target(s) from the peers it reads."""
        spec = self.specs[name]
        source = averaged if spec['source'] == 'temporal_mean' else outputs
        return self[name](source.select(spec['peers']))

    def targets(self, outputs: PeerOutputs,
                averaged: Optional[PeerOutputs]) -> Dict[str, Target]:
        """Every teacher's target(s), in config order."""
        return {name: self.target(name, outputs, averaged)
                for name in self.specs}

    def ce_losses(self, targets: Dict[str, Target], labels: Tensor,
                  peers: nn.Module) -> Dict[str, Tensor]:
        """The teachers' own CE (``ce_weight``), keyed ``{teacher}.loss_ce``
        or, for a target per peer, ``{teacher}.peer{p}.loss_ce``, with the
        head loss of the peer each target belongs to (of the first peer the
        teacher reads for a target of its own)."""
        losses = {}
        for name, spec in self.specs.items():
            if not spec['ce_weight']:
                continue
            read = spec['peers'] or range(peers.num_peers)
            target = targets[name]
            named = [(name, target, read[0])] if isinstance(
                target, Tensor) else [(f'{name}.peer{p}', z, p)
                                      for p, z in zip(read, target)]
            for key, logits, p in named:
                losses[f'{key}.loss_ce'] = spec['ce_weight'] * \
                    peers.head(p).loss_module(logits, labels)
        return losses

    @staticmethod
    def single(name: str, target: Target) -> Tensor:
        """The logits of teacher ``name``'s own."""
        if not isinstance(target, Tensor):
            raise TypeError(f'Teacher {name!r} gives one target per peer: it '
                            'has no logits of its own to train or distil.')
        return target
