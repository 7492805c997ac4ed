"""Filling and checking a cohort config's parts: peers, part configs and
the named classifiers; each check names the config field at fault."""
import copy
import inspect
from typing import Dict, Optional

from mmmcl.registry import MODELS

SOURCES = ('online', 'temporal_mean')


def with_num_classes(member: dict, num_classes: Optional[int]) -> dict:
    """A copy of a classifier config whose head gets ``num_classes`` if it
    names none."""
    member = copy.deepcopy(member)
    head = member.get('head')
    if num_classes is not None and isinstance(head, dict):
        head.setdefault('num_classes', num_classes)
    return member


def peers_cfg(cfg: dict, num_classes: Optional[int]) -> dict:
    """``model.peers`` with ``num_classes`` filled into its heads."""
    cfg = dict(cfg)
    if 'classifier' in cfg:
        cfg['classifier'] = with_num_classes(cfg['classifier'], num_classes)
    if 'members' in cfg:
        cfg['members'] = [
            with_num_classes(m, num_classes) for m in cfg['members']
        ]
    return cfg


def part_cfg(cfg: dict, **fill) -> dict:
    """A target's or term's config with the arguments of ``fill`` that its
    type takes and the config leaves unset (``num_classes``,
    ``stage_channels``)."""
    cfg = dict(cfg)
    cls = cfg['type'] if isinstance(cfg['type'], type) else MODELS.get(
        cfg['type'])
    if cls is not None:
        taken = inspect.signature(cls).parameters
        for name, value in fill.items():
            if name in taken:
                cfg.setdefault(name, value)
    return cfg


def check_classifier(name: str, spec: dict, teachers: Dict[str, dict],
                     has_temporal_mean: bool) -> dict:
    """``model.classifiers[name]`` with its defaults."""
    field = f'`model.classifiers[{name!r}]'
    spec = {**dict(teacher=None, peer=None, source='online'), **spec}
    if set(spec) != {'teacher', 'peer', 'source'}:
        raise ValueError(f'{field}` must be dict(teacher=NAME), '
                         "dict(peer=P) or dict(source='temporal_mean', "
                         f'peer=None), got keys {sorted(spec)}.')
    if spec['teacher'] is not None:
        if spec['teacher'] not in teachers:
            raise ValueError(f"{field}.teacher` is {spec['teacher']!r}; "
                             f'teachers: {sorted(teachers)}.')
    elif spec['source'] not in SOURCES:
        raise ValueError(f'{field}.source` must be one of {SOURCES}, '
                         f"got {spec['source']!r}.")
    elif spec['source'] == 'temporal_mean' and not has_temporal_mean:
        raise ValueError(f"{field}` reads source='temporal_mean': set "
                         '`model.temporal_mean`.')
    elif spec['source'] == 'online' and spec['peer'] is None:
        raise ValueError(f'{field}` names no teacher and no peer; the '
                         'online peers\' mean is `ensemble` already.')
    return spec
