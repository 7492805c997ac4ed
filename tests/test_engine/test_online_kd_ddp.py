"""DDP of an online-KD method (ONE): two CPU processes with half of each batch
compute what one process computes with the whole batch (float64, GroupNorm),
step after step: losses, every gradient and the weights.

ONE (``configs/_base_/models/one.py``): a trunk shared by 3 branches and
the gated ensemble, trained by its own CE, that the branches mimic. The
workers start as ``tools/dist_train.sh`` runs do (torchrun's environment,
:func:`prepare_distributed`, gloo) and wrap the model in
:class:`CohortDistributedDataParallel` as ``Runner.wrap_model`` does
(``device_ids=[rank]``). As in ``test_ddp.py``, the norm layers do not
depend on the batch split: GroupNorm in the backbone and in ONE's gate
(a BatchNorm1d in the method, which plain DDP normalises per rank).
"""
import copy
import os
import socket
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.engine.model_wrappers import (CohortDistributedDataParallel,
                                         prepare_distributed)
from mmmcl.registry import MODEL_WRAPPERS, MODELS

REPO = Path(__file__).resolve().parents[2]
WORLD_SIZE = 2
BATCH = 8  # global; 4 per rank
NUM_CLASSES = 4
STEPS = 3
GN = dict(type='GN', num_groups=4)


def one_cfg() -> dict:
    """ONE as configured, on a GroupNorm ResNet-8 with 4 classes; the KD
    term at full weight (no ramp)."""
    model = Config.fromfile(REPO / 'configs/_base_/models/one.py').model
    model = copy.deepcopy(model.to_dict())
    model.pop('loss_ramp')
    model['peers']['classifier'] = dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(
            type='CifarResNet', depth=8, out_indices=(0, 1, 2), norm_cfg=GN),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', in_channels=64))
    model['teachers']['ensemble']['target']['in_channels'] = 32
    model.update(
        num_classes=NUM_CLASSES,
        data_preprocessor=dict(type='BaseDataPreprocessor'))  # keeps float64
    return model


def build() -> nn.Module:
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(one_cfg())
    # the gate's BN over the batch -> a per-sample norm of the 3 gates
    gate = model.teachers.ensemble
    gate.bn = nn.GroupNorm(1, gate.fc.out_features)
    model.init_weights()
    return model.double().train()


def global_batch(step: int) -> Tuple[torch.Tensor, List[DataSample]]:
    """Classes [0, 0, 1, 1, 2, 2, 3, 3]: each half holds whole classes, as
    the class-balanced sampler's shards do; other images at every step."""
    gen = torch.Generator().manual_seed(step)
    inputs = torch.randn(BATCH, 3, 8, 8, generator=gen, dtype=torch.double)
    samples = [
        DataSample().set_gt_label(i // 2 % NUM_CLASSES) for i in range(BATCH)
    ]
    return inputs, samples


def train(model: nn.Module, module: nn.Module, part: slice) -> Dict:
    """``STEPS`` train steps on ``part`` of each global batch; what they
    computed and the weights they left."""
    sgd = dict(type='SGD', lr=0.05, momentum=0.9, nesterov=True,
               weight_decay=1e-3)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        wrappers = build_optim_wrapper(
            model,
            dict(
                constructor='CohortOptimWrapperConstructor',
                cohort=dict(optimizer=sgd)))
    grads = []
    optimizer = wrappers['cohort'].optimizer
    step = optimizer.step

    def capture(*args, **kwargs):
        # the gradients the update uses (zeroed right after it)
        grads.append({
            n: p.grad.clone()
            for n, p in module.named_parameters() if p.grad is not None
        })
        return step(*args, **kwargs)

    optimizer.step = capture
    log_vars = []
    for i in range(STEPS):
        inputs, samples = global_batch(i)
        log_vars.append({
            k: v.item()
            for k, v in model.train_step(
                dict(inputs=inputs[part], data_samples=samples[part]),
                wrappers).items()
        })
    return dict(
        log_vars=log_vars,
        grads=grads,
        state={k: v.detach().clone()
               for k, v in module.state_dict().items()})


def worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD_SIZE),
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port))
    cfg = Config(
        dict(
            launcher='pytorch',
            model=dict(type='mmmcl.CohortDistiller'),
            env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=120))))
    prepare_distributed(cfg)
    results = dict(
        backend=torch_dist.get_backend(),
        wrapper_type=cfg.get('model_wrapper_cfg', {}).get('type'))
    model = build()
    ddp = MODEL_WRAPPERS.build(
        dict(type='CohortDistributedDataParallel'),
        default_args=dict(module=model, device_ids=[rank]))
    assert isinstance(ddp, CohortDistributedDataParallel)
    part = slice(rank * BATCH // WORLD_SIZE, (rank + 1) * BATCH // WORLD_SIZE)
    results.update(train(ddp, model, part))
    results.update(
        device_ids=ddp.device_ids, ignored=sorted(ddp.parameters_to_ignore))
    torch.save(results, os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Dict:
    """Each rank's results and the single process's."""
    out_dir = tmp_path_factory.mktemp('online_kd_ddp')
    mp.start_processes(
        worker,
        args=(free_port(), str(out_dir)),
        nprocs=WORLD_SIZE,
        start_method='spawn')
    ranks = [
        torch.load(out_dir / f'rank{r}.pth', weights_only=False)
        for r in range(WORLD_SIZE)
    ]
    model = build()
    return dict(ranks=ranks, single=train(model, model, slice(None)))


def assert_close(actual: torch.Tensor, expected: torch.Tensor,
                 name: str) -> None:
    torch.testing.assert_close(
        actual,
        expected,
        rtol=1e-5,
        atol=1e-5 * expected.abs().max().item() + 1e-12,
        msg=lambda m: f'{name}: {m}')


def test_workers_use_gloo_and_the_cohort_wrapper(runs):
    for rank in runs['ranks']:
        assert rank['backend'] == 'gloo'
        assert rank['device_ids'] is None  # dropped on CPU
        assert rank['ignored'] == []  # no meta-network, no banks


def test_prepare_distributed_names_the_cohort_wrapper(runs):
    # MMEngine's wrapper cannot step an OptimWrapperDict (nor the EMA).
    for rank in runs['ranks']:
        assert rank['wrapper_type'] is not None
        assert rank['wrapper_type'].endswith('.CohortDistributedDataParallel')


def test_losses_equal_the_global_batch(runs):
    for step in range(STEPS):
        single = runs['single']['log_vars'][step]
        ranks = [r['log_vars'][step] for r in runs['ranks']]
        losses = [k for k in single if 'loss' in k]
        assert {'peer2.loss_ce', 'ensemble.loss_ce',
                'peer0.loss_kd_ensemble'} <= set(losses)
        for key in losses:
            # per-sample means: the mean over equal shards is the global
            # mean
            mean = sum(r[key] for r in ranks) / WORLD_SIZE
            assert mean == pytest.approx(single[key], rel=1e-5), (step, key)
        # the halves differ: the comparison is not trivial
        assert ranks[0]['peer0.loss_ce'] != pytest.approx(
            ranks[1]['peer0.loss_ce'], rel=1e-3)


def test_every_gradient_equals_the_global_batch(runs):
    single = runs['single']['grads']
    names = [n for n, p in build().named_parameters() if p.requires_grad]
    assert len(single) == STEPS
    for step, grads in enumerate(single):
        # trunk, branches, heads and the gate: every trained parameter
        assert sorted(grads) == sorted(names)
        assert any(n.startswith('teachers.ensemble.') for n in grads)
        for rank in runs['ranks']:
            assert rank['grads'][step].keys() == grads.keys()
            for n, g in grads.items():
                assert_close(rank['grads'][step][n], g, f'step {step}: {n}')


def test_weights_equal_the_global_batch(runs):
    single = runs['single']['state']
    initial = build().state_dict()
    assert any(not torch.equal(v, initial[k]) for k, v in single.items())
    for rank in runs['ranks']:
        assert rank['state'].keys() == single.keys()
        for n, value in single.items():
            assert_close(rank['state'][n], value, n)
