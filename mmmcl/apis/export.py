"""Export a cohort member's backbone as a plain backbone checkpoint.

The export holds ``state_dict`` (keys as the backbone module names them, no
``backbone.`` prefix) and ``meta`` of plain Python types only, so mmdet and
mmseg load it with ``init_cfg=dict(type='Pretrained', checkpoint=...)`` and
``torch.load(weights_only=True)``, without mmmcl's allow-list. mmengine's
Pretrained init loads non-strictly and silently, so every export is checked
against the member's backbone config first, and
:func:`check_export_against_config` checks it against a transfer config.
"""
import copy
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope, Registry

from mmmcl.models.distillers import upgrade_model_cfg
from mmmcl.registry import MODELS
from mmmcl.utils.safe_load import load_from_local
from mmmcl.utils.state_dict_diff import (class_name, describe_diff,
                                         diff_state_dict)
from mmmcl.version import __version__
from .export_peers import peer_backbone

__all__ = [
    'check_backbone_state', 'load_cohort_checkpoint', 'save_backbone',
    'export_backbone', 'check_export_against_config'
]

def _plain(value: Any, field: str) -> Any:
    """``value`` as builtin dicts, lists, tuples and scalars, which
    ``torch.load(weights_only=True)`` loads without an allow-list."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f'{field}.{k}') for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(
            _plain(v, f'{field}[{i}]') for i, v in enumerate(value))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f'`{field}` is a {type(value).__name__} ({value!r:.80}): '
                    'an export keeps only plain Python values in its config '
                    'fields; write it as a str, number, list or dict.')


def _build_backbone(backbone_cfg: Mapping, registry: Registry) -> nn.Module:
    """Build ``backbone_cfg`` without ``init_cfg`` under the registry's
    scope (a current scope of another package would pick its types)."""
    cfg = copy.deepcopy(dict(backbone_cfg))
    cfg.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope(registry.scope):
        try:
            return registry.build(cfg)
        except KeyError as e:
            type_name = str(cfg.get('type'))
            if not type_name.startswith('mmmcl.') or registry.scope in (
                    'mmmcl', 'mmpretrain'):
                raise
            raise KeyError(
                f"{e.args[0]} mmmcl's registries are children of "
                "mmpretrain's, and a `scope.X` type only resolves from a "
                "child of MMEngine's root: write the backbone as "
                f"dict(_scope_='mmmcl', type='{type_name[6:]}', ...).") from e


def _compare(state_dict: Mapping[str, torch.Tensor], module: nn.Module,
             target: str) -> None:
    """Raise unless ``state_dict`` loads into ``module`` strictly."""
    diff = diff_state_dict(state_dict, module.state_dict())
    if not diff.exact:
        raise ValueError(
            describe_diff(diff, f'{target} ({class_name(module)})'))


def check_backbone_state(state_dict: Mapping[str, torch.Tensor],
                         backbone_cfg: Mapping,
                         registry: Optional[Registry] = None) -> None:
    """Check that ``state_dict`` loads strictly into a backbone.

    Builds ``backbone_cfg`` (``init_cfg`` dropped) and compares keys and
    shapes: mmengine's Pretrained init would skip every mismatch silently.

    Args:
        state_dict (Mapping[str, Tensor]): Backbone weights, no prefix.
        backbone_cfg (Mapping): Config of the target backbone.
        registry (Registry, optional): Registry to build it from, under its
            scope: mmdet's or mmseg's ``MODELS`` for their own types (their
            ``ResNet``, ``ResNetV1c``), with ``mmpretrain.X`` types by
            prefix. Defaults to mmmcl's ``MODELS``.

    Raises:
        ValueError: Missing keys, unexpected keys or shape mismatches, the
            first few of each listed, with the likely fix.
    """
    registry = MODELS if registry is None else registry
    backbone = _build_backbone(backbone_cfg, registry)
    _compare(state_dict, backbone, f'`{backbone_cfg.get("type")}`')


def load_cohort_checkpoint(
        checkpoint: str,
        config: Optional[str] = None) -> Tuple[dict, Config, str]:
    """Load a cohort checkpoint safely and the config it was trained with.

    Args:
        checkpoint (str): Checkpoint of a :class:`CohortDistiller`.
        config (str, optional): Config file overriding the one mmengine's
            Runner stored as text in ``meta.cfg``. Defaults to None.

    Returns:
        tuple: The state dict, the config and the config's text.
    """
    ckpt = load_from_local(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f"'{checkpoint}' holds a {type(ckpt).__name__}, "
                         'not a checkpoint dict.')
    state_dict = ckpt.get('state_dict', ckpt)
    if config is not None:
        cfg = _upgraded(Config.fromfile(config))
        return state_dict, cfg, cfg.pretty_text
    meta = ckpt.get('meta')
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str):
        raise ValueError(
            f"'{checkpoint}' holds no config (`meta.cfg`, written by "
            "mmengine's Runner): pass the config the cohort was trained "
            'with (--config CONFIG).')
    return state_dict, _upgraded(Config.fromstring(text,
                                                  file_format='.py')), text


def _upgraded(cfg: Config) -> Config:
    """``cfg`` with a model config of the distillers before their merge
    in today's shape (:func:`~mmmcl.models.distillers.upgrade_model_cfg`)."""
    if isinstance(cfg.get('model'), Mapping):
        cfg.model = upgrade_model_cfg(cfg.model.to_dict())
    return cfg


def _save_atomic(obj: dict, out: str) -> None:
    """``torch.save`` to a temporary file next to ``out``, then rename."""
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=out_dir, prefix=f'.{osp.basename(out)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def save_backbone(state_dict: Mapping[str, torch.Tensor],
                  cfg: Config,
                  member: int,
                  out: str,
                  config_text: Optional[str] = None,
                  source_checkpoint: Optional[str] = None) -> Dict[str, Any]:
    """Extract, check and write one member's backbone.

    Args:
        state_dict (Mapping[str, Tensor]): The cohort's state dict.
        cfg (Config): The cohort config.
        member (int): Index i of the member.
        out (str): Output file, written atomically.
        config_text (str, optional): Config text stored in the export.
            Defaults to ``cfg.pretty_text``.
        source_checkpoint (str, optional): File the weights came from;
            None for a model in memory. Defaults to None.

    Returns:
        dict: ``out``, ``member``, ``arch`` (backbone type),
        ``num_tensors`` and ``num_params``.
    """
    source = f"'{source_checkpoint}'" if source_checkpoint \
        else 'the cohort in memory'
    weights, backbone_cfg = peer_backbone(state_dict, cfg, member, source)
    field = f'peer {member} of `model.peers`'
    backbone_cfg = _plain(backbone_cfg, 'model.peers backbone')
    backbone = _build_backbone(backbone_cfg, MODELS)
    try:
        _compare(weights, backbone, field)
    except ValueError as e:
        raise ValueError(f'Member {member} of {source} does not match its '
                         f'config (a wrong --config?): {e}') from None
    weights = OrderedDict((k, v.detach().cpu()) for k, v in weights.items())
    meta = dict(
        config=config_text if config_text is not None else cfg.pretty_text,
        member=member,
        arch=backbone_cfg,
        mmmcl_version=__version__,
        source_checkpoint=osp.abspath(source_checkpoint)
        if source_checkpoint else None)
    _save_atomic(dict(state_dict=weights, meta=meta), out)
    return dict(
        out=out,
        member=member,
        arch=backbone_cfg['type'],
        num_tensors=len(weights),
        num_params=sum(p.numel() for p in backbone.parameters()))


def export_backbone(checkpoint: str,
                    member: int,
                    out: str,
                    config: Optional[str] = None) -> Dict[str, Any]:
    """Export member ``member`` of a cohort checkpoint to ``out``.

    Args:
        checkpoint (str): Checkpoint of a :class:`CohortDistiller`, loaded
            with ``torch.load(weights_only=True)``.
        member (int): Index i of the member.
        out (str): Output file.
        config (str, optional): Cohort config file; defaults to the one
            stored in the checkpoint.

    Returns:
        dict: See :func:`save_backbone`.
    """
    state_dict, cfg, text = load_cohort_checkpoint(checkpoint, config)
    return save_backbone(
        state_dict, cfg, member, out, config_text=text,
        source_checkpoint=checkpoint)


def check_export_against_config(export_path: str,
                                config_path: str) -> Dict[str, Any]:
    """Check that an export loads strictly into a transfer config's backbone.

    Args:
        export_path (str): File written by :func:`export_backbone`.
        config_path (str): An mmdet, mmseg or mmmcl config; its
            ``default_scope`` picks the registry ``model.backbone`` is built
            from (``init_cfg`` dropped).

    Returns:
        dict: ``target`` (class of the built backbone) and ``num_tensors``.

    Raises:
        ValueError: The export does not fit; see :func:`check_backbone_state`.
    """
    export = load_from_local(export_path, map_location='cpu')
    if not isinstance(export, dict) or not isinstance(
            export.get('state_dict'), Mapping):
        raise ValueError(f"'{export_path}' is not a backbone export (no "
                         '`state_dict`): write one with '
                         'tools/model_converters/export_backbone.py.')
    cfg = Config.fromfile(config_path)
    model = cfg.get('model')
    backbone_cfg = model.get('backbone') if isinstance(model, dict) else None
    if not isinstance(backbone_cfg, dict):
        raise ValueError(f'{config_path} has no `model.backbone` to load '
                         f"'{export_path}' into.")
    registry = MODELS
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.registry import MODELS as registry
    elif cfg.get('default_scope') == 'mmseg':
        from mmseg.registry import MODELS as registry
    backbone = _build_backbone(backbone_cfg, registry)
    meta = export.get('meta') or {}
    try:
        _compare(export['state_dict'], backbone, '`model.backbone`')
    except ValueError as e:
        arch = (meta.get('arch') or {}).get('type')
        raise ValueError(
            f"'{export_path}' (member {meta.get('member')}, {arch}) does not "
            f'fit `model.backbone` of {config_path} (built from the '
            f'{registry.scope} registry): {e}') from None
    return dict(
        target=class_name(backbone), num_tensors=len(export['state_dict']))
