import copy

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict

from mmmcl.models.distillers import MetaModuleModel, require
from mmmcl.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class CohortOptimWrapperConstructor:
    """Two optimizers for a cohort: theta and the meta-network phi.

    ``cohort`` optimizes every parameter but the meta-network's (peers,
    teachers, terms); ``meta`` optimizes the
    ``meta_module()`` of a model that has one (L-MCL,
    :class:`~mmmcl.models.distillers.MetaModuleModel`) and is not used for
    the others (MCL, DML, baselines, the online-KD zoo), so one schedule
    config serves all methods. Each entry is an ordinary optim wrapper
    config and may carry its own ``paramwise_cfg``.

    Example:
        >>> optim_wrapper = dict(
        ...     constructor='CohortOptimWrapperConstructor',
        ...     cohort=dict(optimizer=dict(type='SGD', lr=0.1)),
        ...     meta=dict(optimizer=dict(type='SGD', lr=0.1)))

    Args:
        optim_wrapper_cfg (dict): ``cohort`` and, for a model with a
            meta-network, ``meta``.
        paramwise_cfg (dict, optional): Must be None; give it per entry.
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: dict = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError('CohortOptimWrapperConstructor: put '
                             '`paramwise_cfg` inside `optim_wrapper.cohort` '
                             'or `optim_wrapper.meta`.')
        unknown = set(optim_wrapper_cfg) - {'cohort', 'meta'}
        if 'cohort' not in optim_wrapper_cfg or unknown:
            raise ValueError('`optim_wrapper` of a cohort must hold `cohort` '
                             'and optionally `meta` optim wrapper configs, '
                             f'got keys {sorted(optim_wrapper_cfg)}.')
        self.optim_wrapper_cfg = copy.deepcopy(optim_wrapper_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = require(
            model, MetaModuleModel, 'CohortOptimWrapperConstructor',
            fix='or give other models a plain '
            '`optim_wrapper=dict(optimizer=...)`')
        meta = model.meta_module()
        children = dict(model.named_children())
        if meta is not None:
            if 'meta' not in self.optim_wrapper_cfg:
                raise ValueError(
                    'The model has a meta-network (`model.meta`): give its '
                    'optimizer in `optim_wrapper.meta`.')
            if all(child is not meta for child in children.values()):
                raise ValueError(
                    f'{type(model).__name__}.meta_module() must return a '
                    'direct child of the model (the `cohort` optimizer '
                    f'takes the others), got a {type(meta).__name__} that '
                    'is not one.')
        parts = dict(cohort=nn.ModuleDict({
            name: child
            for name, child in children.items() if child is not meta
        }))
        if meta is not None:
            parts['meta'] = meta
        wrappers = {}
        for name, module in parts.items():
            cfg = copy.deepcopy(self.optim_wrapper_cfg[name])
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(
                module)
            # the paramwise groups come out of the build as ConfigDicts,
            # which torch.compile's tracing of the optimizer step cannot
            # read (InternalTorchDynamoError); torch's own are plain dicts
            groups = wrappers[name].optimizer.param_groups
            groups[:] = [dict(group) for group in groups]
        return OptimWrapperDict(**wrappers)
