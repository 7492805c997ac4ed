"""The backbone of one peer of a cohort (``model.peers``).

The cohort is built from its config and loads the state dict strictly
(checkpoints of the distillers before their merge through the key map on
load); its peers module then gathers the peer's backbone weights
(``backbone_state_dict``): member p's backbone for independent peers, the
path through the tree (the shared trunk, then one branch at each split) for
a :class:`BranchedClassifier`. So any peer's export loads strictly into the
plain backbone of its config.
"""
import copy
from collections import OrderedDict
from typing import Mapping, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmcl.registry import MODELS
from mmmcl.utils.state_dict_diff import LISTED

__all__ = ['num_peers', 'peer_backbone']

# the roots of a cohort's state dict, today's and before the merge
COHORT_ROOTS = ('peers', 'members')


def _build_model(cfg: Config) -> torch.nn.Module:
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        return MODELS.build(model_cfg)


def num_peers(cfg: Config) -> int:
    """N, the number of peers the config's model has."""
    return _build_model(cfg).peers.num_peers


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
        ValueError: Not a cohort's state dict, one that does not load
            strictly into the config's model, or no peer ``peer``.
    """
    weights = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())
    roots = sorted({k.split('.')[0] for k in weights})
    if not set(roots) & set(COHORT_ROOTS):
        raise ValueError(
            f'{source} is not a cohort checkpoint: no key starts with '
            f'`peers.` (its keys start with {roots[:LISTED]}). For a single '
            "classifier checkpoint use init_cfg=dict(type='Pretrained', "
            "checkpoint=..., prefix='backbone.') instead of an export.")
    model = _build_model(cfg)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:

        def listed(keys: list) -> list:  # the members' first
            return sorted(keys, key=lambda k: (
                not k.startswith('peers.members.'), k))[:LISTED]

        raise ValueError(
            f'{source} does not match its config (a wrong --config?): '
            f'{len(missing)} missing keys {listed(missing)}, '
            f'{len(unexpected)} unexpected keys {listed(unexpected)}.')
    total = model.peers.num_peers
    if not 0 <= peer < total:
        raise ValueError(f'{source} has no member {peer}: it holds {total} '
                         f'peers, valid indices (--member) are 0 to '
                         f'{total - 1}.')
    peers_cfg = cfg.model.peers
    owner = peers_cfg.classifier if 'classifier' in peers_cfg \
        else peers_cfg.members[peer]
    backbone = copy.deepcopy(owner.backbone)
    scope = backbone.get('_scope_') or owner.get('_scope_') or \
        cfg.model.get('_scope_', 'mmmcl')
    backbone['_scope_'] = scope
    return OrderedDict(model.peers.backbone_state_dict(peer)), backbone
