"""DDP done right: two CPU processes with half of each batch compute what
one process computes with the whole batch (float64, GroupNorm), for every
kind of cohort: L-MCL with in-batch negatives and with memory banks (one
step with the meta step due: losses, every gradient, the banks and the
meta-network) and ONE (three steps: losses, every gradient and the
weights, of a trunk shared by 3 branches and the gated ensemble).

The workers start as ``tools/dist_train.sh`` runs do: torchrun's environment
variables and :func:`prepare_distributed` (NCCL asked, gloo used), then the
wrapper built as ``Runner.wrap_model`` builds it (``device_ids=[rank]``).
The norm layers do not depend on the batch split: GroupNorm in the
backbones and in ONE's gate (a BatchNorm1d in the method, which plain DDP
normalises per rank). The class-balanced sampler's shards are checked in
``tests/test_datasets/test_samplers.py``.
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
from mmengine.registry import MODEL_WRAPPERS, DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.engine.model_wrappers import (CohortDistributedDataParallel,
                                         prepare_distributed)
from mmmcl.registry import MODELS
from mmmcl.testing import lmcl_model, train_progress

REPO = Path(__file__).resolve().parents[2]
WORLD_SIZE = 2
BATCH = 8  # global; 4 per rank
NUM_CLASSES = 4
GN = dict(type='GN', num_groups=4)


def member(backbone: dict) -> dict:
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(backbone, out_indices=(0, 1, 2), norm_cfg=GN),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', in_channels=64))


def one_model() -> dict:
    """ONE as configured, on a GroupNorm ResNet-8 with 4 classes; the KD
    term at full weight (no ramp)."""
    model = Config.fromfile(REPO / 'configs/_base_/models/one.py').model
    model = copy.deepcopy(model.to_dict())
    model.pop('loss_ramp')
    model['peers']['classifier'] = member(dict(type='CifarResNet', depth=8))
    model['teachers']['ensemble']['target']['in_channels'] = 32
    return model


MEMBERS = [
    member(dict(type='CifarResNet', depth=8)),
    member(dict(type='CifarWideResNet', depth=10, widen_factor=1))
]
LMCL = dict(meta=dict(interval=2, virtual_steps=2, proj_dim=8))
SETUP = dict(
    num_classes=NUM_CLASSES,
    data_preprocessor=dict(type='BaseDataPreprocessor'))  # keeps float64
CONFIGS = dict(
    inbatch=dict(lmcl_model(MEMBERS, **LMCL), **SETUP),
    bank=dict(
        lmcl_model(
            MEMBERS,
            contrast_loss=dict(
                type='MemoryBankContrastLoss',
                num_samples=20,
                feat_dim=8,
                num_members=2,
                momentum=0.5),
            **LMCL), **SETUP),
    one=dict(one_model(), **SETUP))
# train steps of each run; L-MCL's with its meta step due
STEPS = dict(inbatch=1, bank=1, one=3)
LMCL_NAMES = ('inbatch', 'bank')


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(copy.deepcopy(CONFIGS[name]))
    if name == 'one':  # the gate's BN over the batch -> a per-sample norm
        gate = model.teachers.ensemble
        gate.bn = nn.GroupNorm(1, gate.fc.out_features)
    model.init_weights()
    return model.double().train()


def global_batch(step: int = 0) -> Tuple[torch.Tensor, List[DataSample]]:
    """Classes [0, 0, 1, 1, 2, 2, 3, 3]: each half holds whole classes, as
    the class-balanced sampler's shards do; other images at every step.
    Bank rows as in
    ``test_memory_bank_cohort_updates_banks_after_the_step``."""
    gen = torch.Generator().manual_seed(step)
    inputs = torch.randn(BATCH, 3, 8, 8, generator=gen, dtype=torch.double)
    samples = []
    for i in range(BATCH):
        sample = DataSample().set_gt_label(i // 2 % NUM_CLASSES)
        sample.set_field(
            torch.tensor([i, (i + 2) % BATCH, 10, 11, 12]),
            'contrast_idx',
            field_type='data')
        samples.append(sample)
    return inputs, samples


def train(model: nn.Module, module: nn.Module, name: str,
          part: slice) -> Dict:
    """``STEPS[name]`` train steps on ``part`` of each global batch (the
    meta step due at each); what they computed and the weights they left.
    """
    sgd = dict(type='SGD', lr=0.05, momentum=0.9, nesterov=True,
               weight_decay=1e-3)
    parts = ('cohort', 'meta') if module.meta_net is not None \
        else ('cohort', )
    with DefaultScope.overwrite_default_scope('mmmcl'):
        wrappers = build_optim_wrapper(
            model,
            dict(
                constructor='CohortOptimWrapperConstructor',
                **{key: dict(optimizer=sgd) for key in parts}))
    grads = {key: [] for key in parts}
    for key in parts:
        optimizer = wrappers[key].optimizer
        step = optimizer.step

        def capture(*args, key=key, step=step, **kwargs):
            # the gradients the update uses (zeroed right after it)
            grads[key].append({
                n: p.grad.clone()
                for n, p in module.named_parameters() if p.grad is not None
            })
            return step(*args, **kwargs)

        optimizer.step = capture
    log_vars = []
    for i in range(STEPS[name]):
        inputs, samples = global_batch(i)
        with train_progress(batch_idx=0):  # the meta step is due
            log_vars.append({
                k: v.item()
                for k, v in model.train_step(
                    dict(inputs=inputs[part], data_samples=samples[part]),
                    wrappers).items()
            })
    return dict(
        log_vars=log_vars,
        theta_grads=grads['cohort'],
        hypergrads=grads.get('meta'),
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
        cfg_backend=cfg.env_cfg.dist_cfg.backend,
        wrapper_type=cfg.model_wrapper_cfg.type)
    part = slice(rank * BATCH // WORLD_SIZE, (rank + 1) * BATCH // WORLD_SIZE)
    for name in CONFIGS:
        model = build(name)
        ddp = MODEL_WRAPPERS.build(
            cfg.model_wrapper_cfg,
            default_args=dict(module=model, device_ids=[rank]))
        assert isinstance(ddp, CohortDistributedDataParallel)
        results[name] = train(ddp, model, name, part)
        results[name].update(
            device_ids=ddp.device_ids,
            ignored=sorted(ddp.parameters_to_ignore))
    torch.save(results, os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Dict:
    """Each rank's results and the single process's, per config."""
    out_dir = tmp_path_factory.mktemp('ddp')
    mp.start_processes(
        worker,
        args=(free_port(), str(out_dir)),
        nprocs=WORLD_SIZE,
        start_method='spawn')
    ranks = [
        torch.load(out_dir / f'rank{r}.pth', weights_only=False)
        for r in range(WORLD_SIZE)
    ]
    single = {}
    for name in CONFIGS:
        model = build(name)
        single[name] = train(model, model, name, slice(None))
    return dict(ranks=ranks, single=single)


def assert_close(actual: torch.Tensor, expected: torch.Tensor,
                 name: str) -> None:
    torch.testing.assert_close(
        actual,
        expected,
        rtol=1e-5,
        atol=1e-5 * expected.abs().max().item() + 1e-12,
        msg=lambda m: f'{name}: {m}')


def test_workers_use_gloo_and_the_cohort_wrapper(runs):
    """Every cohort gets the cohort wrapper (MMEngine's cannot step an
    OptimWrapperDict, a meta step or an EMA); it ignores the meta-network
    and the banks, nothing of ONE's."""
    for rank in runs['ranks']:
        assert rank['backend'] == rank['cfg_backend'] == 'gloo'
        assert rank['wrapper_type'].endswith('.CohortDistributedDataParallel')
        for name in CONFIGS:
            assert rank[name]['device_ids'] is None  # dropped on CPU
        for name in LMCL_NAMES:
            ignored = rank[name]['ignored']
            assert ignored and all(
                n.startswith(('meta_net.', 'terms.contrast.contrast_loss.'))
                for n in ignored)
        assert {
            f'terms.contrast.contrast_loss.bank{m}'
            for m in range(2)
        } <= set(rank['bank']['ignored'])
        assert rank['one']['ignored'] == []


@pytest.mark.parametrize('name', list(CONFIGS))
def test_losses_equal_the_global_batch(runs, name):
    expected = {'contrast.loss_icl', 'meta/outer_ce'} if name in LMCL_NAMES \
        else {'peer2.loss_ce', 'ensemble.loss_ce', 'peer0.loss_kd_ensemble'}
    for step in range(STEPS[name]):
        single = runs['single'][name]['log_vars'][step]
        ranks = [r[name]['log_vars'][step] for r in runs['ranks']]
        losses = [k for k in single if 'loss' in k or k == 'meta/outer_ce']
        assert expected <= set(losses)
        for key in losses:
            # per-sample means: the mean over equal shards is the global
            # mean
            mean = sum(r[key] for r in ranks) / WORLD_SIZE
            assert mean == pytest.approx(single[key], rel=1e-5), (step, key)
        # the halves differ: the comparison is not trivial
        assert ranks[0]['peer0.loss_ce'] != pytest.approx(
            ranks[1]['peer0.loss_ce'], rel=1e-3)
        if name == 'inbatch':
            # every rank computes the contrast terms of the global batch
            for term in ('vcl', 'soft_vcl', 'icl', 'soft_icl'):
                key = f'contrast.loss_{term}'
                for r in ranks:
                    assert r[key] == pytest.approx(single[key], rel=1e-5)


@pytest.mark.parametrize('name', list(CONFIGS))
def test_every_gradient_equals_the_global_batch(runs, name):
    """Every trained parameter but the meta-network's (members, branches,
    heads, aggregators, embedding heads; ONE's trunk, branches and gate)."""
    single = runs['single'][name]['theta_grads']
    names = [n for n, p in build(name).named_parameters()
             if p.requires_grad and not n.startswith('meta_net.')]
    assert len(single) == STEPS[name]
    for step, grads in enumerate(single):
        assert sorted(grads) == sorted(names)
        assert any(n.startswith('teachers.') for n in grads)
        for rank in runs['ranks']:
            assert rank[name]['theta_grads'][step].keys() == grads.keys()
            for n, g in grads.items():
                assert_close(rank[name]['theta_grads'][step][n], g,
                             f'step {step}: {n}')


@pytest.mark.parametrize('name', list(CONFIGS))
def test_weights_equal_the_global_batch(runs, name):
    """Parameters, statistics, the meta-network and the banks after the
    steps."""
    single = runs['single'][name]['state']
    initial = build(name).state_dict()
    assert any(not torch.equal(v, initial[k]) for k, v in single.items())
    for rank in runs['ranks']:
        assert rank[name]['state'].keys() == single.keys()
        for n, value in single.items():
            assert_close(rank[name]['state'][n], value, n)


@pytest.mark.parametrize('name', LMCL_NAMES)
def test_meta_network_equals_the_global_batch(runs, name):
    single = runs['single'][name]
    hypergrads = single['hypergrads'][0]
    assert hypergrads and all(g.abs().sum() > 0 for g in hypergrads.values())
    for rank in runs['ranks']:
        for n, g in hypergrads.items():
            assert_close(rank[name]['hypergrads'][0][n], g, n)
        assert rank[name]['log_vars'][0]['meta/hypergrad_norm'] == \
            pytest.approx(single['log_vars'][0]['meta/hypergrad_norm'],
                          rel=1e-5)


def test_banks_equal_the_global_batch(runs):
    bank = 'terms.contrast.contrast_loss.bank0'
    single = runs['single']['bank']['state'][bank]
    for rank in runs['ranks']:
        assert_close(rank['bank']['state'][bank], single, bank)
    # the update wrote the rows of both halves
    initial = build('bank').state_dict()[bank]
    assert not torch.equal(single[:BATCH], initial[:BATCH])
    assert torch.equal(single[BATCH:], initial[BATCH:])


def test_prepare_distributed_leaves_single_process_runs_alone():
    cfg = Config(dict(launcher='none', model=dict(type='CohortDistiller')))
    prepare_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg


def test_prepare_distributed_names_the_wrapper_for_the_runner():
    cfg = Config(
        dict(
            launcher='slurm',  # no process group started here
            model=dict(type='CohortDistiller'),
            model_wrapper_cfg=dict(type='CohortDistributedDataParallel')))
    prepare_distributed(cfg)
    # Runner.wrap_model asks MMEngine's root registry
    assert MODEL_WRAPPERS.get(cfg.model_wrapper_cfg.type) is \
        CohortDistributedDataParallel
    cfg = Config(dict(launcher='slurm', model=dict(type='CohortDistiller')))
    prepare_distributed(cfg)
    assert MODEL_WRAPPERS.get(cfg.model_wrapper_cfg.type) is \
        CohortDistributedDataParallel
    # other models on CPU: MMEngine's wrapper, without device_ids
    cfg = Config(
        dict(launcher='slurm', model=dict(type='mmpretrain.ImageClassifier')))
    prepare_distributed(cfg)
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None


def test_wrapper_takes_only_a_cohort():
    with pytest.raises(TypeError, match='MMDistributedDataParallel'):
        CohortDistributedDataParallel(torch.nn.Linear(2, 2))
