"""mmmcl's ``Pretrained`` init: safe, strict and loud loading of weights."""
import logging
import os
import os.path as osp
from collections import OrderedDict
from typing import Mapping, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.runner import CheckpointLoader

from mmmcl.registry import WEIGHT_INITIALIZERS
from mmmcl.utils.safe_load import load_from_local
from mmmcl.utils.state_dict_diff import (class_name, describe_diff,
                                         diff_state_dict, listing)

#: What a transfer config writes as its backbone's ``init_cfg``.
HOW_TO_SET = ('set model.backbone.init_cfg.checkpoint=PATH (e.g. '
              '`--cfg-options model.backbone.init_cfg.checkpoint=work_dirs/'
              '<cohort>/backbones/member0.pth`) or, to train the backbone '
              'from scratch, model.backbone.init_cfg=None')


@WEIGHT_INITIALIZERS.register_module(name='Pretrained')
class StrictPretrainedInit:
    """Load a checkpoint into a module; raise on any key that does not fit.

    Registered as ``'Pretrained'`` in mmmcl's ``WEIGHT_INITIALIZERS``, so
    ``init_cfg=dict(_scope_='mmmcl', type='Pretrained', checkpoint=PATH)``
    picks it under any default scope (mmmcl, mmdet, mmseg; ``'mmmcl.X'``
    would not resolve under mmdet's or mmseg's), while mmengine's
    ``BaseModule.init_weights`` still sees ``type == 'Pretrained'``: it runs
    this init after its children's own inits, and backbones that skip their
    default init for a pretrained one (mmpretrain's ``ResNet``,
    ``ShuffleNetV2``) still do. Any other type name would have the loaded
    weights overwritten there. Under ``default_scope='mmmcl'`` a plain
    ``type='Pretrained'`` is this init too.

    Unlike mmengine's ``PretrainedInit`` (``strict=False``: a mismatch is a
    log warning) it loads with ``torch.load(weights_only=True)`` and mmmcl's
    allow-list, logs how many tensors matched, and raises on a missing key,
    an unexpected key (``strict=True``) or a shape mismatch, naming the keys,
    the file and the likely fix.

    Accepted layouts: an mmmcl export (``state_dict`` of backbone keys and
    ``meta``, ``tools/model_converters/export_backbone.py``), any checkpoint
    with a ``state_dict`` (mmengine's), or a plain state dict; a DDP
    ``module.`` prefix is dropped.

    Args:
        checkpoint (str, optional): Local path or URL of the weights. None
            raises when the init runs: a transfer config leaves it None so
            that a forgotten path is an error, not a random backbone.
            Defaults to None.
        prefix (str, optional): Load only the keys starting with it, without
            it, e.g. ``'backbone.'`` for a whole classifier checkpoint.
            Defaults to None.
        map_location (str): Where the tensors are loaded. Defaults to 'cpu'.
        strict (bool): Raise on missing or unexpected keys. With False they
            are logged as warnings; a shape mismatch always raises.
            Defaults to True.
    """

    def __init__(self,
                 checkpoint: Optional[str] = None,
                 prefix: Optional[str] = None,
                 map_location: str = 'cpu',
                 strict: bool = True) -> None:
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.map_location = map_location
        self.strict = strict
        self.wholemodule = False  # set by mmengine's initialize()

    def __call__(self, module: nn.Module) -> None:
        target = type(module).__name__
        if self.checkpoint is None:
            raise ValueError(
                f'The init_cfg of {target} loads pretrained weights, but '
                f'no checkpoint is given (checkpoint=None): {HOW_TO_SET}.')
        state_dict = self._select(self._load(target))
        diff = diff_state_dict(state_dict, module.state_dict())
        where = f"'{self.checkpoint}'" + (f" (prefix '{self.prefix}')"
                                          if self.prefix else '')
        if diff.mismatched or (self.strict and not diff.exact):
            report = describe_diff(diff, f'{target} ({class_name(module)})')
            if not self.strict:
                report += (' (strict=False allows only missing and '
                           'unexpected keys)')
            raise ValueError(f'{where}: {report}')
        module.load_state_dict(state_dict, strict=False)
        message = (f'Loaded {where} into {target}: {diff.num_matched} of '
                   f'{diff.num_expected} tensors, {len(diff.missing)} '
                   f'missing, {len(diff.unexpected)} unexpected.')
        if diff.missing:
            message += listing('missing (left as initialised)', diff.missing)
        if diff.unexpected:
            message += listing('unexpected (not loaded)', diff.unexpected)
        print_log(message, logger='current',
                  level=logging.INFO if diff.exact else logging.WARNING)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _load(self, target: str) -> dict:
        """The checkpoint, safely; a missing file names the path."""
        path = self.checkpoint
        if '://' in path:
            return CheckpointLoader.load_checkpoint(path, self.map_location)
        if not osp.isfile(osp.expanduser(path)):
            raise FileNotFoundError(
                f'The init_cfg of {target} loads {path!r}, which is not a '
                f'file (working directory {os.getcwd()}): {HOW_TO_SET}.')
        return load_from_local(path, map_location=self.map_location)

    def _select(self, checkpoint: Mapping) -> 'OrderedDict[str, torch.Tensor]':
        """The tensors to load: ``state_dict`` if present, prefix applied."""
        if not isinstance(checkpoint, Mapping):
            raise ValueError(f"'{self.checkpoint}' holds a "
                             f'{type(checkpoint).__name__}, not weights.')
        state_dict = checkpoint.get('state_dict', checkpoint)
        tensors = OrderedDict()
        for key, value in state_dict.items():
            if not isinstance(value, torch.Tensor):
                raise ValueError(
                    f"'{self.checkpoint}' holds no state dict: `{key}` is a "
                    f'{type(value).__name__}. Give an mmmcl export, a '
                    "checkpoint with a `state_dict`, or a plain state dict.")
            tensors[key[7:] if key.startswith('module.') else key] = value
        if self.prefix is None:
            return tensors
        selected = OrderedDict((k[len(self.prefix):], v)
                               for k, v in tensors.items()
                               if k.startswith(self.prefix))
        if not selected:
            roots = sorted({k.split('.')[0] + '.' for k in tensors})
            raise ValueError(
                f"No key of '{self.checkpoint}' starts with prefix "
                f"'{self.prefix}' (its keys start with {roots[:10]}); an "
                'mmmcl export needs no prefix.')
        return selected

    def _get_init_info(self) -> str:
        return f'{type(self).__name__}: load from {self.checkpoint}'
