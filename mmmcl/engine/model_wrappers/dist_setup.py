"""Ready a config for ``--launcher``: the cohort wrapper, CPU with gloo."""
import datetime

import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.device import get_device
from mmengine.dist import is_distributed
from mmengine.logging import print_log

from mmmcl.models.distillers import DistributedStepModel
from mmmcl.registry import MODEL_WRAPPERS, MODELS


def prepare_distributed(cfg: Config) -> None:
    """Adjust ``cfg`` of a distributed run before the Runner is built.

    - A model that runs its own train step (its registered class is a
      :class:`~mmmcl.models.distillers.DistributedStepModel`: mmmcl's
      distillers) without ``model_wrapper_cfg`` gets
      ``dict(type='CohortDistributedDataParallel')``: MMEngine's default
      wrapper would run its own train step, without the bank update, the
      meta step or the temporal mean. An mmmcl wrapper type is rewritten to
      its import path, the only name of it that ``Runner.wrap_model``
      finds.
    - ``--launcher pytorch`` without CUDA (or another accelerator): MMEngine's
      ``init_dist`` would call ``torch.cuda.set_device``, and configs ask for
      NCCL. The backend becomes ``'gloo'`` (logged) and the process group is
      initialised here from torchrun's environment; the Runner uses it as
      is. Other models get MMEngine's wrapper without ``device_ids``.

    Nothing changes for ``launcher='none'``; GPU runs only get the cohort
    wrapper.

    Args:
        cfg (Config): The merged config; ``cfg.launcher`` is set.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none':
        return
    on_cpu = get_device() == 'cpu'
    if launcher == 'pytorch' and on_cpu and not is_distributed():
        _init_gloo(cfg)
    if cfg.get('model_wrapper_cfg') is None:
        if _steps_itself(cfg.get('model')):
            cfg.model_wrapper_cfg = dict(type='CohortDistributedDataParallel')
        elif on_cpu:
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel',
                device_ids=None,
                broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters',
                                               False))
    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if wrapper_cfg is not None and isinstance(wrapper_cfg.get('type'), str):
        # Runner.wrap_model looks the type up in MMEngine's root registry,
        # which does not see mmmcl's node (a grandchild): name an mmmcl
        # wrapper by its import path, which the root resolves.
        wrapper = MODEL_WRAPPERS.get(wrapper_cfg.type)
        if wrapper is not None and wrapper.__module__.startswith('mmmcl.'):
            wrapper_cfg.type = f'{wrapper.__module__}.{wrapper.__name__}'


def _steps_itself(model_cfg) -> bool:
    """Whether the registered class of ``model_cfg`` runs its own train
    step under :class:`CohortDistributedDataParallel`."""
    model_type = model_cfg.get('type') if isinstance(model_cfg,
                                                     dict) else None
    if isinstance(model_type, str):
        model_type = MODELS.get(model_type)
    return isinstance(model_type, type) and issubclass(
        model_type, DistributedStepModel)


def _init_gloo(cfg: Config) -> None:
    env_cfg = cfg.get('env_cfg') or {}
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    backend = dist_cfg.pop('backend', 'nccl')
    dist_cfg.pop('init_backend', None)
    if dist_cfg.get('timeout') is not None:
        dist_cfg['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
    torch_dist.init_process_group(backend='gloo', **dist_cfg)
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if backend != 'gloo' and torch_dist.get_rank() == 0:
        print_log(
            f'No CUDA device: `env_cfg.dist_cfg.backend` {backend!r} -> '
            "'gloo' (CPU processes).",
            logger='current')
