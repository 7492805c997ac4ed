"""The backbone of one peer of an online-KD model (``model.peers``).

A peer of a :class:`BranchedClassifier` is a path through the tree (the
shared trunk, then one branch at each split); its weights are gathered by
the built peers module itself (``backbone_state_dict``), so an export of
any peer loads strictly into the classifier's plain backbone.
"""
import copy
from collections import OrderedDict
from typing import Mapping, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmcl.registry import MODELS

__all__ = ['has_peers', 'num_peers', 'peer_backbone']


def has_peers(cfg: Config) -> bool:
    """Whether ``cfg.model`` is an online-KD model with ``peers``."""
    model = cfg.get('model')
    return isinstance(model, Mapping) and 'peers' in model


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
        state_dict (Mapping[str, Tensor]): The online-KD model's state dict;
            keys may carry a wrapper's ``module.`` prefix.
        cfg (Config): Its config.
        peer (int): Index p of the peer.
        source (str): Where the weights came from, named in errors.

    Returns:
        tuple: The weights (keys as the plain backbone names them) and the
        backbone config (``model.peers.classifier.backbone`` for peers
        sharing a trunk, ``model.peers.members[p].backbone`` otherwise).

    Raises:
        ValueError: The state dict does not load strictly into the config's
            model, or there is no peer ``peer``.
    """
    model = _build_model(cfg)
    weights = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(
            f'{source} does not fit the model of its config (a wrong '
            f'--config?): missing keys {sorted(missing)[:5]}, unexpected '
            f'keys {sorted(unexpected)[:5]}.')
    total = model.peers.num_peers
    if not 0 <= peer < total:
        raise ValueError(f'{source} has no peer {peer}: it holds {total} '
                         f'peers, valid indices (--member) are 0 to '
                         f'{total - 1}.')
    peers_cfg = cfg.model.peers
    if 'classifier' in peers_cfg:
        backbone = peers_cfg.classifier.backbone
    else:
        backbone = peers_cfg.members[peer].backbone
    return OrderedDict(model.peers.backbone_state_dict(peer)), backbone
