"""Exact resume of an L-MCL cohort: n steps straight == k, crash, resume
(in-batch and memory-bank contrast, at an epoch boundary and mid-epoch,
with and without a loss-weight ramp cut in its middle)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmmcl.utils import load_from_local

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/lmcl/lmcl_resnet20x2_1xb100-15e_mnist5k.py'


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
             ramp: bool = False) -> Config:
    """The MNIST-5k L-MCL config shrunk to 3 iterations per epoch.

    60 training images, batches of 10 digits x 2, ResNet-8 members and a
    meta step every 2 iterations. Epoch-based: 3 epochs, a warm-up epoch
    then a cosine. Iteration-based: 7 iterations (so epochs end mid-run),
    a 2-iteration warm-up then a cosine. The lr changes at every step.
    ``bank``: memory banks (4 negatives a sample) instead of in-batch
    negatives. ``ramp``: every distillation term ramped up over the whole
    run (sigmoid by epoch, or linear by iteration), so the cut falls in the
    middle of the ramp.
    """
    cfg = Config.fromfile(CONFIG)
    for member in cfg.model.peers.members:
        member.backbone.depth = 8
    cfg.model.terms.contrast.embed_dim = 8
    cfg.model.meta.interval = 2
    cfg.model.meta.proj_dim = 8
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
    if ramp:
        cfg.model.loss_ramp = dict(
            type='LossWeightRamp', shape='sigmoid', length=3) if by_epoch \
            else dict(type='LossWeightRamp', shape='linear', length=7,
                      by_epoch=False)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = work_dir.name
    return cfg


def train(cfg: Config, stop=None) -> Runner:
    runner = Runner.from_cfg(cfg)
    if stop is not None:
        runner.register_hook(InterruptAfter(stop), priority='LOWEST')
    try:
        runner.train()
    except Interrupted:
        pass
    return runner


def assert_same_optimizers(a: dict, b: dict) -> None:
    """Two checkpoints' optimizer states (both wrappers, every buffer),
    parameter groups and schedulers are equal."""
    for name in ('cohort', 'meta'):
        state_a = a['optimizer'][name]['state']
        state_b = b['optimizer'][name]['state']
        assert state_a.keys() == state_b.keys()
        for idx in state_a:
            for buf, value in state_a[idx].items():
                assert torch.equal(value, state_b[idx][buf]), (name, idx, buf)
        assert (a['optimizer'][name]['param_groups'] ==
                b['optimizer'][name]['param_groups'])
    assert a['param_schedulers'] == b['param_schedulers']


# the bank and ramp variants of the epoch (or iteration) loop run with
# `pytest -m slow`: the quick suite keeps one of each
@pytest.mark.parametrize(
    'by_epoch,stop,end,bank,ramp',
    [(True, 2, 3, False, False), (False, 4, 7, False, False),
     pytest.param(True, 2, 3, True, False, marks=pytest.mark.slow),
     (False, 4, 7, True, False), (True, 2, 3, False, True),
     pytest.param(False, 4, 7, False, True, marks=pytest.mark.slow)],
    ids=['epoch_2_of_3', 'iter_4_of_7', 'bank_epoch_2_of_3',
         'bank_iter_4_of_7', 'ramp_epoch_2_of_3', 'ramp_iter_4_of_7'])
def test_resume_is_exact(tmp_path, by_epoch, stop, end, bank, ramp):
    unit = 'epoch' if by_epoch else 'iter'
    straight = train(tiny_cfg(tmp_path / 'straight', by_epoch, bank, ramp))
    crashed = tiny_cfg(tmp_path / 'crashed', by_epoch, bank, ramp)
    train(crashed, stop=stop)
    assert not (tmp_path / 'crashed' / f'{unit}_{end}.pth').exists()
    crashed.resume = True
    crashed.experiment_name += '_resumed'
    resumed = train(crashed)
    assert resumed.iter == straight.iter == (9 if by_epoch else 7)

    a = load_from_local(str(tmp_path / 'straight' / f'{unit}_{end}.pth'))
    b = load_from_local(str(tmp_path / 'crashed' / f'{unit}_{end}.pth'))
    assert a['state_dict'].keys() == b['state_dict'].keys()
    assert any(k.startswith('meta_net.') for k in a['state_dict'])
    assert bank == any(
        k.startswith('terms.contrast.contrast_loss.bank')
        for k in a['state_dict'])
    assert ramp == any('ramp/' in k for k in straight.message_hub.log_scalars)
    for key, value in a['state_dict'].items():
        # Members, branches, BN statistics, the meta-network and banks.
        assert torch.equal(value, b['state_dict'][key]), key
    assert_same_optimizers(a, b)
    assert a['meta']['epoch'] == b['meta']['epoch']
    # The sampler's position: the next epoch's batches are the same.
    sampler_a = straight.train_dataloader.batch_sampler
    sampler_b = resumed.train_dataloader.batch_sampler
    assert sampler_a.epoch == sampler_b.epoch
    assert list(sampler_a) == list(sampler_b)
    if bank:  # the bank rows the next batches would bring
        data_a = straight.train_dataloader.dataset
        data_b = resumed.train_dataloader.dataset
        assert data_a.epoch == data_b.epoch
        assert all((data_a.contrast_idx(i) == data_b.contrast_idx(i)).all()
                   for i in range(len(data_a)))
