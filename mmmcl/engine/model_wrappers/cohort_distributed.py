from contextlib import nullcontext
from typing import Dict, List, Union

import torch
import torch.distributed as torch_dist
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch.nn.parallel import DistributedDataParallel

from mmmcl.models.distillers import DistributedStepModel, require
from mmmcl.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CohortDistributedDataParallel(MMDistributedDataParallel):
    """DDP for a model that runs its own train step: a
    :class:`~mmmcl.models.CohortDistiller`, or any
    :class:`~mmmcl.models.distillers.DistributedStepModel`.

    ``train_step`` runs the distiller's own step (normal update, bank
    update, meta step) with the loss forward through DDP, so the gradients
    of theta are averaged over the ranks. Together with the distiller's
    cross-rank in-batch contrast and the meta step's averaged gradients, W
    processes with B / W images each compute what one process computes with
    the global batch of B: losses, gradients, banks and meta-network.
    Batch-split-dependent layers (BatchNorm) are the exception; see SyncBN
    below.

    DDP ignores what the model's ``ddp_ignored_names()`` lists, for a
    cohort the meta-network's parameters and the memory banks: no unused
    parameters (so no ``find_unused_parameters``) and no broadcast of the
    banks at every forward. They are broadcast from rank 0 once, here, and
    then stay equal on all ranks by construction. On CPU the ``device_ids``
    that ``Runner.wrap_model`` passes are dropped (torch wants None there).
    ``val_step`` and ``test_step`` are MMEngine's.

    Use it in a config with::

        model_wrapper_cfg = dict(type='CohortDistributedDataParallel')

    ``tools/train.py`` and ``tools/test.py`` set this for a cohort launched
    with ``--launcher`` when the config has no ``model_wrapper_cfg``, and
    pass the type to the Runner as its import path: ``Runner.wrap_model``
    looks types up in MMEngine's root registry, which does not see mmmcl's
    node. A hand-built Runner takes
    ``dict(type='mmmcl.engine.CohortDistributedDataParallel')``. Keyword
    arguments go to :class:`torch.nn.parallel.DistributedDataParallel`.

    SyncBN: set ``sync_bn = 'torch'`` in the config, or pass
    ``cfg=dict(sync_bn='torch')`` to a hand-built Runner: the Runner
    converts every BatchNorm to ``torch.nn.SyncBatchNorm`` before wrapping.
    Torch's SyncBatchNorm runs on GPUs only, and the meta step
    differentiates its hand-written backward once more, which torch does
    not document (untested here, no GPU). Plain BatchNorm normalises per
    rank. The exact equivalence takes norm layers that do not depend on
    the batch split, e.g. ``norm_cfg=dict(type='GN', num_groups=...)`` in
    the members' backbones (``tests/test_engine/test_ddp.py``).

    Args:
        module (DistributedStepModel): The distiller to wrap.
        detect_anomalous_params (bool): Not supported (the meta-network is
            never in the normal step's graph). Defaults to False.
    """

    def __init__(self,
                 module: DistributedStepModel,
                 detect_anomalous_params: bool = False,
                 **kwargs) -> None:
        require(
            module, DistributedStepModel, 'CohortDistributedDataParallel',
            fix="or use model_wrapper_cfg=dict(type='MMDistributedData"
            "Parallel') for other models")
        if detect_anomalous_params:
            raise ValueError('CohortDistributedDataParallel does not support '
                             '`detect_anomalous_params`: the meta-network '
                             'never enters the normal step\'s loss graph.')
        ignored = sorted(
            set(getattr(module, '_ddp_params_and_buffers_to_ignore', ()))
            | set(module.ddp_ignored_names()))
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            module, ignored)
        if all(p.device.type == 'cpu' for p in module.parameters()):
            kwargs['device_ids'] = None
            kwargs['output_device'] = None
        super().__init__(module=module, **kwargs)
        if kwargs.get('init_sync', True):
            self._broadcast_from_rank0(ignored)

    @torch.no_grad()
    def _broadcast_from_rank0(self, names: List[str]) -> None:
        tensors = dict(self.module.named_parameters())
        tensors.update(self.module.named_buffers())
        for name in names:
            torch_dist.broadcast(
                tensors[name].detach(), group=self.process_group, group_src=0)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]
                   ) -> Dict[str, torch.Tensor]:
        """The cohort's train step with the loss forward through DDP.

        Gradient accumulation skips the gradient all-reduce until the
        update, as :meth:`OptimWrapper.optim_context` does for a DDP model.

        Args:
            data (dict | tuple | list): A batch from the dataloader.
            optim_wrapper (OptimWrapper | OptimWrapperDict): As
                :meth:`CohortDistiller.train_step` takes it.

        Returns:
            dict[str, Tensor]: The logged values of this rank.
        """
        cohort_wrapper, _ = self.module.optim_wrappers(optim_wrapper)
        sync = nullcontext() if cohort_wrapper.should_sync() \
            else self.no_sync()
        with sync:
            return self.module.train_step(
                data, optim_wrapper, run_forward=self._run_forward)
