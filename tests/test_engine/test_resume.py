"""Exact resume: n steps straight == k, crash, resume, for every kind of
cohort state, cut at an epoch boundary and mid-epoch.

- L-MCL: both optimizers, the meta-network, in-batch or memory-bank
  contrast (the banks and the bank rows the next batches bring), with and
  without a loss-weight ramp cut in its middle.
- PCL keeps a temporal mean of its peers (MMEngine's
  ``MomentumAnnealingEMA`` held as ``model.temporal_mean``, updated after
  every step): its weights and ``steps`` counter must come back with the
  online weights.
- FFL trains its fusion module in a parameter group of its own (weight
  decay x 0.02, ``paramwise_cfg.custom_keys``): the groups and their
  momentum buffers must come back.
"""
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmmcl.utils import load_from_local

REPO = Path(__file__).resolve().parents[2]
CONFIGS = dict(
    lmcl=REPO / 'configs/lmcl/lmcl_resnet20x2_1xb100-15e_mnist5k.py',
    pcl=REPO / 'configs/pcl/pcl_resnet20_1xb100-15e_mnist5k.py',
    ffl=REPO / 'configs/ffl/ffl_resnet20_1xb100-15e_mnist5k.py')
FUSION = 'teachers.fusion.'
# (by_epoch, stop, end): 3 epochs of 3 iterations cut after epoch 2, or 7
# iterations cut after iteration 4 (in the middle of epoch 2)
CUTS = [(True, 2, 3), (False, 4, 7)]
CUT_IDS = ['epoch_2_of_3', 'iter_4_of_7']


class Interrupted(Exception):
    """Stands for a crash or a killed job."""


class InterruptAfter(Hook):
    """Raises once checkpoint ``stop`` (epoch or iteration) is written."""

    def __init__(self, stop: int) -> None:
        self.stop = stop

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not runner.train_loop.__class__.__name__.startswith('Epoch') and \
                runner.iter + 1 == self.stop:
            raise Interrupted

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.stop:
            raise Interrupted


def tiny_cfg(work_dir: Path,
             by_epoch: bool,
             bank: bool = False,
             ramp: bool = False,
             method: str = 'lmcl') -> Config:
    """The MNIST-5k config of ``method`` shrunk to 3 iterations per epoch.

    60 training images, batches of 10 digits x 2, ResNet-8 members.
    Epoch-based: 3 epochs, a warm-up epoch then a cosine. Iteration-based:
    7 iterations (so epochs end mid-run), a 2-iteration warm-up then a
    cosine. The lr changes at every step. ``ramp``: every distillation term
    ramped up over the whole run (sigmoid by epoch, or linear by
    iteration), so the cut falls in the middle of the ramp; the zoo's runs
    always ramp. L-MCL: a meta step every 2 iterations; ``bank``: memory
    banks (4 negatives a sample) instead of in-batch negatives. PCL's
    temporal mean moves faster (momentum 0.1, not 0.001) so that it is far
    from both its start and the online peers.
    """
    cfg = Config.fromfile(CONFIGS[method])
    peers = cfg.model.peers
    for classifier in peers.get('members') or [peers.classifier]:
        classifier.backbone.depth = 8
    if method == 'lmcl':
        cfg.model.terms.contrast.embed_dim = 8
        cfg.model.meta.interval = 2
        cfg.model.meta.proj_dim = 8
    if method == 'pcl':
        cfg.model.temporal_mean.momentum = 0.1
    cfg.train_dataloader.batch_size = 20
    cfg.train_dataloader.dataset.num_per_class = 6
    cfg.train_dataloader.batch_sampler.num_per_class = 2
    if by_epoch:
        cfg.param_scheduler[1].T_max = 2
        cfg.train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=100)
    else:
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                 end=2),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=2, T_max=5)
        ]
        cfg.train_cfg = dict(by_epoch=False, max_iters=7, val_interval=100)
        cfg.log_processor = dict(by_epoch=False)
    cfg.val_dataloader.dataset.num_per_class = 2
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1, by_epoch=by_epoch,
        max_keep_ckpts=-1)
    cfg.default_hooks.logger.interval = 1
    # mmmcl's hooks are default hooks: keep progress and RNG state
    for name in ('cohort_plot', 'cohort_sanity', 'contrast_index'):
        cfg.default_hooks.pop(name)
    if bank:
        cfg.model.terms.contrast.contrast_loss = dict(
            type='MemoryBankContrastLoss', num_samples=60, feat_dim=8,
            num_members=2)
        cfg.train_dataloader.dataset = dict(
            type='ContrastIndexDataset', num_negatives=4,
            dataset=cfg.train_dataloader.dataset)
        cfg.default_hooks.contrast_index = dict(type='ContrastIndexHook')
    if ramp or method != 'lmcl':
        cfg.model.loss_ramp = dict(
            type='LossWeightRamp', shape='sigmoid', length=3) if by_epoch \
            else dict(type='LossWeightRamp', shape='linear', length=7,
                      by_epoch=False)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = work_dir.name
    return cfg


def train(cfg: Config, stop: Optional[int] = None) -> Runner:
    runner = Runner.from_cfg(cfg)
    if stop is not None:
        runner.register_hook(InterruptAfter(stop), priority='LOWEST')
    try:
        runner.train()
    except Interrupted:
        pass
    return runner


def straight_and_resumed(tmp_path: Path,
                         by_epoch: bool,
                         stop: int,
                         end: int,
                         make_cfg: Callable = tiny_cfg,
                         run: Callable = train,
                         **options) -> Dict:
    """Both runners and their last checkpoints, and the one resumed from:
    configs of ``make_cfg(work_dir, by_epoch, **options)`` trained by
    ``run(cfg, stop)``."""
    unit = 'epoch' if by_epoch else 'iter'
    straight = run(make_cfg(tmp_path / 'straight', by_epoch, **options))
    crashed = make_cfg(tmp_path / 'crashed', by_epoch, **options)
    run(crashed, stop=stop)
    assert not (tmp_path / 'crashed' / f'{unit}_{end}.pth').exists()
    cut = load_from_local(str(tmp_path / 'crashed' / f'{unit}_{stop}.pth'))
    crashed.resume = True
    crashed.experiment_name += '_resumed'
    resumed = run(crashed)
    iters = end * 3 if by_epoch else end
    assert resumed.iter == straight.iter == iters
    return dict(
        straight=straight,
        resumed=resumed,
        cut=cut,
        a=load_from_local(str(tmp_path / 'straight' / f'{unit}_{end}.pth')),
        b=load_from_local(str(tmp_path / 'crashed' / f'{unit}_{end}.pth')))


def assert_same_optimizers(a: dict, b: dict) -> None:
    """Two checkpoints' optimizer states (every wrapper, every buffer),
    parameter groups and schedulers are equal."""
    assert a['optimizer'].keys() == b['optimizer'].keys()
    for name in a['optimizer']:
        state_a = a['optimizer'][name]['state']
        state_b = b['optimizer'][name]['state']
        assert state_a and state_a.keys() == state_b.keys()
        for idx in state_a:
            for buf, value in state_a[idx].items():
                assert torch.equal(value, state_b[idx][buf]), (name, idx, buf)
        assert (a['optimizer'][name]['param_groups'] ==
                b['optimizer'][name]['param_groups'])
    assert a['param_schedulers'] == b['param_schedulers']


def assert_same_run(runs: Dict) -> None:
    """Checkpoints, live weights and the sampler's position all equal."""
    a, b = runs['a'], runs['b']
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():
        # peers, teachers, terms, statistics, the meta-network, banks and
        # the temporal mean
        assert torch.equal(value, b['state_dict'][key]), key
    assert_same_optimizers(a, b)
    assert a['meta']['epoch'] == b['meta']['epoch']
    # the runners as they stand, not only what they last wrote
    live_a = runs['straight'].model.state_dict()
    live_b = runs['resumed'].model.state_dict()
    assert live_a.keys() == live_b.keys()
    for key, value in live_a.items():
        assert torch.equal(value, live_b[key]), key
    # the sampler's position: the next epoch's batches are the same
    sampler_a = runs['straight'].train_dataloader.batch_sampler
    sampler_b = runs['resumed'].train_dataloader.batch_sampler
    assert sampler_a.epoch == sampler_b.epoch
    assert list(sampler_a) == list(sampler_b)


# the quick suite keeps one cut of each kind (the plain iteration cut runs
# with banks, and in the zoo's tests); `pytest -m slow` runs them all
@pytest.mark.parametrize(
    'by_epoch,stop,end,bank,ramp',
    [(True, 2, 3, False, False),
     pytest.param(False, 4, 7, False, False, marks=pytest.mark.slow),
     pytest.param(True, 2, 3, True, False, marks=pytest.mark.slow),
     (False, 4, 7, True, False), (True, 2, 3, False, True),
     pytest.param(False, 4, 7, False, True, marks=pytest.mark.slow)],
    ids=['epoch_2_of_3', 'iter_4_of_7', 'bank_epoch_2_of_3',
         'bank_iter_4_of_7', 'ramp_epoch_2_of_3', 'ramp_iter_4_of_7'])
def test_lmcl_resume_is_exact(tmp_path, by_epoch, stop, end, bank, ramp):
    runs = straight_and_resumed(tmp_path, by_epoch, stop, end, bank=bank,
                                ramp=ramp)
    a = runs['a']
    assert a['optimizer'].keys() == {'cohort', 'meta'}
    assert any(k.startswith('meta_net.') for k in a['state_dict'])
    assert bank == any(
        k.startswith('terms.contrast.contrast_loss.bank')
        for k in a['state_dict'])
    assert ramp == any(
        'ramp/' in k for k in runs['straight'].message_hub.log_scalars)
    assert_same_run(runs)
    if bank:  # the bank rows the next batches would bring
        data_a = runs['straight'].train_dataloader.dataset
        data_b = runs['resumed'].train_dataloader.dataset
        assert data_a.epoch == data_b.epoch
        assert all((data_a.contrast_idx(i) == data_b.contrast_idx(i)).all()
                   for i in range(len(data_a)))


@pytest.mark.parametrize('by_epoch,stop,end', CUTS, ids=CUT_IDS)
def test_pcl_resume_restores_the_temporal_mean(tmp_path, by_epoch, stop,
                                               end):
    runs = straight_and_resumed(tmp_path, by_epoch, stop, end, method='pcl')
    steps_at_cut = 3 * stop if by_epoch else stop
    # The EMA is in the checkpoint resumed from, mid-way.
    cut = runs['cut']['state_dict']
    assert any(k.startswith('temporal_mean.module.') for k in cut)
    assert cut['temporal_mean.steps'].item() == steps_at_cut > 0
    assert_same_run(runs)
    final = runs['b']['state_dict']
    assert final['temporal_mean.steps'].item() == runs['resumed'].iter
    ema = runs['resumed'].model.temporal_mean
    assert ema.steps.item() == runs['resumed'].iter
    # The comparison is not trivial: the EMA moved since the cut and is
    # not the online peers.
    params = [k[len('peers.'):] for k, v in final.items()
              if k.startswith('peers.') and v.is_floating_point()
              and 'running_' not in k]
    assert not all(
        torch.equal(final[f'temporal_mean.module.{k}'], final[f'peers.{k}'])
        for k in params)
    assert not all(
        torch.equal(final[f'temporal_mean.module.{k}'],
                    cut[f'temporal_mean.module.{k}']) for k in params)


def fusion_groups(runner: Runner) -> Dict[str, list]:
    """The cohort optimizer's groups holding fusion parameters, and the
    other groups holding trained parameters."""
    names = {id(p): n for n, p in runner.model.named_parameters()}
    groups = dict(fusion=[], other=[])
    for group in runner.optim_wrapper['cohort'].optimizer.param_groups:
        trained = [names[id(p)] for p in group['params'] if p.requires_grad]
        if not trained:
            continue
        is_fusion = [n.startswith(FUSION) for n in trained]
        assert all(is_fusion) or not any(is_fusion), trained
        groups['fusion' if is_fusion[0] else 'other'].append(group)
    return groups


@pytest.mark.parametrize('by_epoch,stop,end', CUTS, ids=CUT_IDS)
def test_ffl_resume_restores_the_fusion_param_group(tmp_path, by_epoch,
                                                    stop, end):
    runs = straight_and_resumed(tmp_path, by_epoch, stop, end, method='ffl')
    base_wd = tiny_cfg(tmp_path, by_epoch, method='ffl').optim_wrapper.cohort[
        'optimizer']['weight_decay']
    assert base_wd > 0
    for key in ('straight', 'resumed'):
        groups = fusion_groups(runs[key])
        assert groups['fusion'] and groups['other']
        for group in groups['fusion']:
            assert group['weight_decay'] == 0.02 * base_wd
        for group in groups['other']:
            assert group['weight_decay'] == base_wd
    # ... as the checkpoint has them, with the fusion's momentum buffers
    # (torch numbers the parameters across the groups, in order).
    straight = runs['straight']
    names = {id(p): n for n, p in straight.model.named_parameters()}
    order = [
        names[id(p)] for g in straight.optim_wrapper['cohort'].optimizer.
        param_groups for p in g['params']
    ]
    saved = runs['a']['optimizer']['cohort']
    fusion = [i for i, n in enumerate(order) if n.startswith(FUSION)]
    assert fusion
    for group in saved['param_groups']:
        if set(group['params']) & set(fusion):
            assert set(group['params']) <= set(fusion)
            assert group['weight_decay'] == 0.02 * base_wd
    assert all('momentum_buffer' in saved['state'][i] for i in fusion)
    assert_same_run(runs)
