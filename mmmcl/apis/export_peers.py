"""The backbone of one peer of a cohort (``model.peers``).

Only the cohort's peers module is built from its config (not the teachers,
terms, meta-network or memory banks), and it loads the ``peers.`` part of
the state dict strictly (checkpoints of the distillers before their merge
through the same key map as on load); the peers module then gathers the
peer's backbone weights (``backbone_state_dict``): member p's backbone for
independent peers, the path through the tree (the shared trunk, then one
branch at each split) for a :class:`BranchedClassifier`. So any peer's
export loads strictly into the plain backbone of its config.
"""
import copy
from collections import OrderedDict
from typing import Mapping, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmcl.models.distillers import map_legacy_keys
from mmmcl.models.distillers.cohort_specs import peers_cfg
from mmmcl.registry import MODELS
from mmmcl.utils.state_dict_diff import LISTED

__all__ = ['num_peers', 'peer_backbone']

PREFIX = 'peers.'


def _build_peers(cfg: Config) -> torch.nn.Module:
    """The config's peers module, heads filled with the cohort's
    ``num_classes`` as :class:`CohortDistiller` fills them."""
    model = cfg.model
    preprocessor = model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    num_classes = model.get('num_classes', preprocessor.get('num_classes'))
    with DefaultScope.overwrite_default_scope('mmmcl'):
        return MODELS.build(peers_cfg(copy.deepcopy(model.peers),
                                      num_classes))


def _listed(keys: list) -> list:
    """The first keys of a mismatch, the members' first."""
    members_first = sorted(
        keys, key=lambda k: (not k.startswith('members.'), k))
    return members_first[:LISTED]


def num_peers(cfg: Config) -> int:
    """N, the number of peers the config's model has."""
    return _build_peers(cfg).num_peers


def peer_backbone(state_dict: Mapping[str, torch.Tensor], cfg: Config,
                  peer: int, source: str) -> Tuple[OrderedDict, dict]:
    """Peer ``peer``'s backbone weights and backbone config.

    Args:
        state_dict (Mapping[str, Tensor]): The cohort's state dict; keys may
            carry a wrapper's ``module.`` prefix.
        cfg (Config): Its config (``model.peers``).
        peer (int): Index p of the peer.
        source (str): Where the weights came from, named in errors.

    Returns:
        tuple: The weights (keys as the plain backbone names them) and the
        backbone config (``model.peers.classifier.backbone`` for peers
        sharing a trunk, ``model.peers.members[p].backbone`` otherwise), with
        the nearest ``_scope_``.

    Raises:
        ValueError: Not a cohort's state dict, one whose ``peers.`` part
            does not load strictly into the config's peers, or no peer
            ``peer``.
    """
    weights = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())
    map_legacy_keys(weights, '')  # an old cohort's members.N.*, ...
    roots = sorted({k.split('.')[0] for k in weights})
    if PREFIX[:-1] not in roots:
        raise ValueError(
            f'{source} is not a cohort checkpoint: no key starts with '
            f'`peers.` (its keys start with {roots[:LISTED]}). For a single '
            "classifier checkpoint use init_cfg=dict(type='Pretrained', "
            "checkpoint=..., prefix='backbone.') instead of an export.")
    peers = _build_peers(cfg)
    missing, unexpected = peers.load_state_dict(
        OrderedDict((k[len(PREFIX):], v) for k, v in weights.items()
                    if k.startswith(PREFIX)),
        strict=False)
    if missing or unexpected:
        raise ValueError(
            f'{source} does not match its config (a wrong --config?): '
            f'{len(missing)} missing keys {_listed(missing)}, '
            f'{len(unexpected)} unexpected keys {_listed(unexpected)} '
            'of `model.peers`.')
    total = peers.num_peers
    if not 0 <= peer < total:
        raise ValueError(f'{source} has no member {peer}: it holds {total} '
                         f'peers, valid indices (--member) are 0 to '
                         f'{total - 1}.')
    spec = cfg.model.peers
    owner = spec.classifier if 'classifier' in spec else spec.members[peer]
    backbone = copy.deepcopy(owner.backbone)
    scope = backbone.get('_scope_') or owner.get('_scope_') or \
        cfg.model.get('_scope_', 'mmmcl')
    backbone['_scope_'] = scope
    return OrderedDict(peers.backbone_state_dict(peer)), backbone
