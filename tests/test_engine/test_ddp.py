"""DDP done right: two CPU processes with half of a batch each compute what
one process computes with the whole batch (float64, GroupNorm members):
losses, every gradient, the memory banks and the meta-network.

The workers start as ``tools/dist_train.sh`` runs do: torchrun's environment
variables and :func:`prepare_distributed` (NCCL asked, gloo used), then the
wrapper built as ``Runner.wrap_model`` builds it (``device_ids=[rank]``).
The class-balanced sampler's shards are checked in
``tests/test_datasets/test_samplers.py``.
"""
import copy
import os
import socket

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODEL_WRAPPERS, DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.engine.model_wrappers import (CohortDistributedDataParallel,
                                         prepare_distributed)
from mmmcl.registry import MODELS
from mmmcl.testing import lmcl_model, train_progress

WORLD_SIZE = 2
BATCH = 8  # global; 4 per rank
NUM_CLASSES = 4
GN = dict(type='GN', num_groups=4)


def member(backbone):
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(backbone, out_indices=(0, 1, 2), norm_cfg=GN),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', in_channels=64))


MEMBERS = [
    member(dict(type='CifarResNet', depth=8)),
    member(dict(type='CifarWideResNet', depth=10, widen_factor=1))
]
LMCL = dict(
    num_classes=NUM_CLASSES,
    data_preprocessor=dict(type='BaseDataPreprocessor'),  # keeps float64
    meta=dict(interval=2, virtual_steps=2, proj_dim=8))
CONFIGS = dict(
    inbatch=lmcl_model(MEMBERS, **LMCL),
    bank=lmcl_model(
        MEMBERS,
        contrast_loss=dict(
            type='MemoryBankContrastLoss',
            num_samples=20,
            feat_dim=8,
            num_members=2,
            momentum=0.5),
        **LMCL))


def build(name):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(copy.deepcopy(CONFIGS[name]))
    model.init_weights()
    return model.double().train()


def global_batch():
    """Classes [0, 0, 1, 1, 2, 2, 3, 3]: each half holds whole classes, as
    the class-balanced sampler's shards do. Bank rows as in
    ``test_memory_bank_cohort_updates_banks_after_the_step``."""
    gen = torch.Generator().manual_seed(0)
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


def train_step(model, module, data):
    """One train step with the meta step due; what it computed."""
    sgd = dict(type='SGD', lr=0.05, momentum=0.9, nesterov=True,
               weight_decay=1e-3)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        wrappers = build_optim_wrapper(
            model,
            dict(
                constructor='CohortOptimWrapperConstructor',
                cohort=dict(optimizer=sgd),
                meta=dict(optimizer=sgd)))
    grads = {}
    for key in ('cohort', 'meta'):
        optimizer = wrappers[key].optimizer
        step = optimizer.step

        def capture(*args, key=key, step=step, **kwargs):
            # the gradients the update uses (zeroed right after it)
            grads[key] = {
                n: p.grad.clone()
                for n, p in module.named_parameters() if p.grad is not None
            }
            return step(*args, **kwargs)

        optimizer.step = capture
    with train_progress(batch_idx=0):  # the meta step is due
        log_vars = model.train_step(data, wrappers)
    return dict(
        log_vars={k: v.item()
                  for k, v in log_vars.items()},
        theta_grads=grads['cohort'],
        hypergrads=grads['meta'],
        meta_net={
            n: p.detach().clone()
            for n, p in module.meta_net.named_parameters()
        },
        banks=[
            b.clone()
            for b in module.terms.contrast.named_banks().values()
        ])


def worker(rank, port, out_dir):
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
    inputs, samples = global_batch()
    part = slice(rank * BATCH // WORLD_SIZE, (rank + 1) * BATCH // WORLD_SIZE)
    for name in CONFIGS:
        model = build(name)
        ddp = MODEL_WRAPPERS.build(
            cfg.model_wrapper_cfg,
            default_args=dict(module=model, device_ids=[rank]))
        results[name] = train_step(
            ddp, model, dict(inputs=inputs[part], data_samples=samples[part]))
        results[name].update(
            device_ids=ddp.device_ids,
            ignored=sorted(ddp.parameters_to_ignore))
    torch.save(results, os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
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
    inputs, samples = global_batch()
    single = {}
    for name in CONFIGS:
        model = build(name)
        single[name] = train_step(model, model,
                                  dict(inputs=inputs, data_samples=samples))
    return dict(ranks=ranks, single=single)


def assert_close(actual, expected, name):
    torch.testing.assert_close(
        actual,
        expected,
        rtol=1e-5,
        atol=1e-5 * expected.abs().max().item() + 1e-12,
        msg=lambda m: f'{name}: {m}')


def test_workers_use_gloo_and_the_cohort_wrapper(runs):
    for rank in runs['ranks']:
        assert rank['backend'] == rank['cfg_backend'] == 'gloo'
        assert rank['wrapper_type'].endswith('.CohortDistributedDataParallel')
        for name in CONFIGS:
            assert rank[name]['device_ids'] is None  # dropped on CPU
            ignored = rank[name]['ignored']
            assert ignored and all(
                n.startswith(('meta_net.', 'terms.contrast.contrast_loss.'))
                for n in ignored)
        assert {
            f'terms.contrast.contrast_loss.bank{m}'
            for m in range(2)
        } <= set(rank['bank']['ignored'])


@pytest.mark.parametrize('name', list(CONFIGS))
def test_losses_equal_the_global_batch(runs, name):
    single = runs['single'][name]['log_vars']
    ranks = [r[name]['log_vars'] for r in runs['ranks']]
    losses = [k for k in single if 'loss' in k or k == 'meta/outer_ce']
    assert 'contrast.loss_icl' in losses and 'meta/outer_ce' in losses
    for key in losses:
        # per-sample means: the mean over equal shards is the global mean
        mean = sum(r[key] for r in ranks) / WORLD_SIZE
        assert mean == pytest.approx(single[key], rel=1e-5), key
    # the halves differ: the comparison is not trivial
    assert ranks[0]['peer0.loss_ce'] != pytest.approx(
        ranks[1]['peer0.loss_ce'], rel=1e-3)
    if name == 'inbatch':
        # every rank computes the contrast terms of the global batch
        for term in ('vcl', 'soft_vcl', 'icl', 'soft_icl'):
            key = f'contrast.loss_{term}'
            for r in ranks:
                assert r[key] == pytest.approx(single[key], rel=1e-5), key


@pytest.mark.parametrize('name', list(CONFIGS))
def test_every_gradient_equals_the_global_batch(runs, name):
    single = runs['single'][name]['theta_grads']
    names = [n for n, _ in build(name).named_parameters()]
    assert len(single) == sum(not n.startswith('meta_net.') for n in names)
    for rank in runs['ranks']:
        grads = rank[name]['theta_grads']
        assert grads.keys() == single.keys()
        for n, g in single.items():
            assert_close(grads[n], g, n)


@pytest.mark.parametrize('name', list(CONFIGS))
def test_meta_network_equals_the_global_batch(runs, name):
    single = runs['single'][name]
    assert single['hypergrads'] and all(
        g.abs().sum() > 0 for g in single['hypergrads'].values())
    for rank in runs['ranks']:
        for n, g in single['hypergrads'].items():
            assert_close(rank[name]['hypergrads'][n], g, n)
        for n, p in single['meta_net'].items():
            assert_close(rank[name]['meta_net'][n], p, n)
        assert rank[name]['log_vars']['meta/hypergrad_norm'] == pytest.approx(
            single['log_vars']['meta/hypergrad_norm'], rel=1e-5)


def test_banks_equal_the_global_batch(runs):
    single = runs['single']['bank']['banks']
    assert len(single) == 2
    for rank in runs['ranks']:
        for m, bank in enumerate(single):
            assert_close(rank['bank']['banks'][m], bank, f'bank{m}')
    # the update wrote the rows of both halves
    initial = build('bank').terms.contrast.contrast_loss.banks[0]
    assert not torch.equal(single[0][:BATCH], initial[:BATCH])
    assert torch.equal(single[0][BATCH:], initial[BATCH:])


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
