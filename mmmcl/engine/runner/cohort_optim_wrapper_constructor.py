import copy

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict

from mmmcl.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class CohortOptimWrapperConstructor:
    """Two optimizers for a cohort: theta and the meta-network phi.

    ``cohort`` optimizes every parameter but the meta-network's (members,
    branches, embedding heads, aggregators); ``meta`` optimizes
    ``model.meta_net`` of a model that has one (L-MCL) and is not used for
    the others (MCL, DML, baselines), so one schedule config serves all
    methods. Each entry is an ordinary optim wrapper config and may carry
    its own ``paramwise_cfg``.

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
        if is_model_wrapper(model):
            model = model.module
        meta_net = getattr(model, 'meta_net', None)
        if meta_net is not None and 'meta' not in self.optim_wrapper_cfg:
            raise ValueError(
                'The model has a meta-network (`model.meta`): give its '
                'optimizer in `optim_wrapper.meta`.')
        parts = dict(
            cohort=nn.ModuleDict({
                name: child
                for name, child in model.named_children()
                if name != 'meta_net'
            }))
        if meta_net is not None:
            parts['meta'] = meta_net
        wrappers = {}
        for name, module in parts.items():
            cfg = copy.deepcopy(self.optim_wrapper_cfg[name])
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(
                module)
        return OptimWrapperDict(**wrappers)
