import json
import logging
import random
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.structures import DataSample
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from mmmcl.engine.hooks import (CohortPlotHook, CohortSanityHook,
                                RandomStateHook)
from mmmcl.models.distillers import MatchingWeights
from mmmcl.models.utils import cohort_blocks
from mmmcl.registry import MODELS
from mmmcl.testing import lmcl_model

CONFIG = Path(__file__).parents[2] / 'configs' / 'lmcl' / \
    'lmcl_resnet20x2_1xb100-15e_mnist5k.py'


def _unique(prefix: str) -> str:
    return f'{prefix}_{uuid.uuid4().hex[:8]}'


@pytest.fixture
def warnings_log():
    """Messages of the warnings logged to a fresh current MMLogger."""
    logger = MMLogger.get_instance(_unique('test_hooks'), log_level='INFO')
    messages = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def _draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(),
            np.random.randn(), [random.random() for _ in range(3)],
            random.gauss(0, 1))


# --------------------------------------------------------- RandomStateHook
def test_random_state_round_trip(tmp_path):
    # odd draws: numpy and random keep a cached Gaussian in their states
    np.random.randn()
    random.gauss(0, 1)
    hook = RandomStateHook()
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = _draws()

    path = tmp_path / 'rng.pth'
    torch.save(checkpoint, path)
    # only tensors and plain values: nothing needs mmmcl's allow-list
    allowed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        assert torch.serialization.get_unsafe_globals_in_checkpoint(
            str(path)) == []
        loaded = torch.load(path, weights_only=True)
    finally:
        torch.serialization.add_safe_globals(allowed)

    hook.after_load_checkpoint(SimpleNamespace(_resume=True), loaded)
    assert _draws() == expected
    # Runner.resume may reseed after loading: before_train restores again
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    hook.before_train(None)
    assert _draws() == expected
    # and only once: the first epoch (an epoch-based loop) forgets them
    hook.before_train_epoch(SimpleNamespace(train_loop=object()))
    hook.before_train(None)
    assert _draws() != expected


def test_random_state_untouched_by_load_from():
    hook = RandomStateHook()
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = _draws()
    hook.after_load_checkpoint(SimpleNamespace(_resume=False), checkpoint)
    hook.before_train(None)
    assert _draws() != expected
    # a checkpoint written without the hook resumes without complaint
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), {})


class _DrawingModel(BaseModel):
    """Records one draw of torch, numpy and random per training step."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.draws = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.draws.append((torch.rand(1).item(), np.random.rand(),
                           random.random()))
        return dict(loss=self.linear(inputs).pow(2).mean())


def _toy_run(work_dir, max_epochs, hook=True, **kwargs):
    model = _DrawingModel()
    runner = Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=_unique('rng'),
        train_dataloader=DataLoader(
            TensorDataset(torch.ones(4, 1)), batch_size=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(logger=None),
        custom_hooks=[RandomStateHook()] if hook else None,
        randomness=dict(seed=0),
        **kwargs)
    runner.train()
    return model.draws


def test_random_state_hook_resumes_runner(tmp_path):
    full = _toy_run(tmp_path / 'full', max_epochs=2)
    assert full[:2] != full[2:]
    _toy_run(tmp_path / 'half', max_epochs=1)
    checkpoint = str(tmp_path / 'half' / 'epoch_1.pth')
    assert 'rng_state' in torch.load(checkpoint, weights_only=True)

    resumed = _toy_run(
        tmp_path / 'resumed', max_epochs=2, resume=True, load_from=checkpoint)
    assert resumed == full[2:]
    # without the hook mmengine's reseeding repeats the first epoch
    reseeded = _toy_run(
        tmp_path / 'reseeded', max_epochs=2, hook=False, resume=True,
        load_from=checkpoint)
    assert reseeded == full[:2]
    # load_from (weights only) keeps the fresh seed
    loaded = _toy_run(
        tmp_path / 'loaded', max_epochs=1, load_from=checkpoint)
    assert loaded == full[:2]


# ------------------------------------------------------ matching weights
NUM_CLASSES = 4


def _member(depth):
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='CifarResNet', depth=depth, out_indices=(0, 1, 2)),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', in_channels=64))


def _tiny_lmcl():
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(
            lmcl_model([_member(8), _member(8)],
                       num_classes=NUM_CLASSES,
                       meta=dict(interval=2, virtual_steps=1, proj_dim=8)))
    model.init_weights()
    return model


def test_mean_matching_weights():
    model = _tiny_lmcl()
    samples = [DataSample().set_gt_label(i // 2) for i in range(8)]
    batches = [torch.randn(8, 3, 16, 16, generator=torch.Generator()
                           .manual_seed(s)) for s in (0, 1)]
    with torch.no_grad():
        expected = torch.stack([
            model.meta_net(model(x, mode='tensor').feats_by_stage()).mean(1)
            for x in batches
        ]).mean(0)
    assert model.mean_matching_weights() is None
    for x in batches:
        model(x, samples, mode='loss')
    mean = model.mean_matching_weights()
    assert mean.num_stages == [3, 3]
    assert mean.weights.shape == (len(cohort_blocks([3, 3])), )
    torch.testing.assert_close(mean.weights, expected)
    assert model.mean_matching_weights() is None  # reset by the call
    assert not any('matching_weight' in k for k in model.state_dict())


# ---------------------------------------------------------- CohortPlotHook
class _FakeCohort:
    """What CohortPlotHook reads of a CohortDistiller."""

    def __init__(self, num_stages, meta=True):
        self.num_stages = num_stages
        self.meta = meta
        self.pending = None

    def mean_matching_weights(self):
        weights, self.pending = self.pending, None
        if not self.meta or weights is None:
            return None
        return MatchingWeights(self.num_stages, weights)


class _Recorder:

    def __init__(self):
        self.images = {}

    def add_image(self, name, image, step=0):
        self.images[(name, step)] = image


def _fake_runner(tmp_path, model, epoch=0, iter=0):
    return SimpleNamespace(
        model=model,
        message_hub=MessageHub.get_instance(_unique('plot')),
        visualizer=_Recorder(),
        work_dir=str(tmp_path),
        epoch=epoch,
        iter=iter,
        train_loop=SimpleNamespace(max_epochs=10, max_iters=100))


def _log_losses(hub, num_iters, constant=()):
    rng = np.random.default_rng(0)
    for _ in range(num_iters):
        for key in ('loss', 'peer0.loss_ce', 'peer1.s1.loss_ce',
                    'contrast.loss_icl', 'aggregator.peer0.loss_ce',
                    'peer0.loss_kd_aggregator'):
            value = 0. if key in constant else float(rng.uniform(0.1, 3))
            hub.update_scalar(f'train/{key}', value)
        hub.update_scalar('train/meta/time', 1.)


def _check_image(image):
    assert image.dtype == np.uint8 and image.ndim == 3
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert image.shape[2] == 3
    assert image.std() > 10  # not a blank canvas


def test_plot_hook_nothing_logged(tmp_path):
    runner = _fake_runner(tmp_path, _FakeCohort([2, 2]))
    CohortPlotHook().after_train(runner)
    assert runner.visualizer.images == {}
    assert not (tmp_path / 'matching_weights.json').exists()


def test_plot_hook_interval_and_images(tmp_path):
    num_stages = [3, 2]
    blocks = cohort_blocks(num_stages)
    weights = torch.linspace(0.3, 0.7, len(blocks))
    model = _FakeCohort(num_stages)
    runner = _fake_runner(tmp_path, model)
    _log_losses(runner.message_hub, 5)
    hook = CohortPlotHook(interval=2)

    model.pending = weights
    hook.after_train_epoch(runner)  # epoch 1: not due
    assert runner.visualizer.images == {}
    runner.epoch = 1
    hook.after_train_epoch(runner)  # epoch 2
    images = runner.visualizer.images
    assert set(images) == {('loss_curves', 2), ('matching_weights', 2)}
    for image in images.values():
        _check_image(image)

    record = json.loads((tmp_path / 'matching_weights.json').read_text())
    assert record['step'] == 2
    assert record['groups'] == ['net0/s1', 'net0/s2', 'net0/s3', 'net1/s1',
                                'net1/s2']
    assert len(record['blocks']) == len(blocks) == 12
    assert record['blocks'][0] == dict(
        row='net0/s1', col='net1/s1', weight=pytest.approx(0.3))
    assert record['blocks'][-1] == dict(
        row='net1/s2', col='net0/s3', weight=pytest.approx(0.7))
    assert all(b['row'][:4] != b['col'][:4] for b in record['blocks'])
    matrix = np.array(record['matrix'], dtype=float)  # None -> nan
    assert matrix.shape == (5, 5)
    assert np.isnan(matrix[:3, :3]).all() and np.isnan(matrix[3:, 3:]).all()
    np.testing.assert_allclose(matrix[:3, 3:].ravel(), weights[:6])
    np.testing.assert_allclose(matrix[3:, :3].ravel(), weights[6:])

    # end of training: no new weights, so only the loss curves, now with
    # a validation panel (a third row)
    two_panels = images[('loss_curves', 2)]
    runner.message_hub.update_scalar('val/ensemble/accuracy/top1', 50.)
    runner.message_hub.update_scalar('val/member0/accuracy/top1', 40.)
    runner.epoch = 3
    hook.after_train(runner)
    assert set(images) == {('loss_curves', 2), ('matching_weights', 2),
                           ('loss_curves', 3)}
    assert images[('loss_curves', 3)].shape[0] > two_panels.shape[0]


def test_plot_hook_by_iter_without_meta_net(tmp_path):
    runner = _fake_runner(tmp_path, _FakeCohort([1, 1], meta=False))
    _log_losses(runner.message_hub, 3)
    hook = CohortPlotHook(interval=3, by_epoch=False)
    hook.after_train_epoch(runner)
    for it in range(4):
        runner.iter = it
        hook.after_train_iter(runner, batch_idx=it)
    assert set(runner.visualizer.images) == {('loss_curves', 3)}
    assert not (tmp_path / 'matching_weights.json').exists()


def test_plot_hook_panels():
    hub = MessageHub.get_instance(_unique('panels'))
    assert CohortPlotHook.panels(hub.log_scalars) == []
    hub.update_scalar('val/member0/accuracy/top1', 40.)
    assert CohortPlotHook.panels(hub.log_scalars) == []  # no loss yet
    _log_losses(hub, 3)
    hub.update_scalar('val/member0/accuracy/top5', 80.)
    hub.update_scalar('val/ensemble/accuracy/top1', 50.)
    panels = CohortPlotHook.panels(hub.log_scalars)
    assert [sorted(curves) for curves, _, _ in panels] == [
        ['loss', 'peer0.loss_ce', 'peer1.s1.loss_ce'],
        ['aggregator.peer0.loss_ce', 'contrast.loss_icl',
         'peer0.loss_kd_aggregator'],
        ['ensemble/accuracy/top1', 'member0/accuracy/top1'],
    ]
    assert len(panels[0][0]['loss']) == 3


def test_plot_hook_rejects_wrong_block_count():
    with pytest.raises(ValueError, match='12 blocks'):
        CohortPlotHook.matching_weights([3, 2], [0.5] * 11)


@pytest.mark.slow
def test_plot_hook_tiny_lmcl_run(tmp_path):
    cfg = Config.fromfile(str(CONFIG))
    cfg.merge_from_dict({
        'train_dataloader.dataset.num_per_class': 10,
        'train_dataloader.batch_size': 20,
        'train_dataloader.batch_sampler.num_per_class': 2,
        'train_cfg.max_epochs': 1,
        'model.meta.interval': 2,
        'val_dataloader.dataset.indices': list(range(0, 500, 10)),
        'val_dataloader.batch_size': 50,
    })
    # one epoch: only the warm-up (the cosine part would start at epoch 1)
    cfg.param_scheduler = cfg.param_scheduler[:1]
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = _unique('plot_run')
    runner = Runner.from_cfg(cfg)
    runner.train()

    vis_dir = tmp_path / runner.timestamp / 'vis_data' / 'vis_image'
    for name in ('loss_curves_1.png', 'matching_weights_1.png'):
        with Image.open(vis_dir / name) as image:
            assert image.width > 200 and image.height > 200
            assert np.asarray(image.convert('L')).std() > 10
    record = json.loads((tmp_path / 'matching_weights.json').read_text())
    num_blocks = len(cohort_blocks(runner.model.meta_net.num_stages))
    weights = [b['weight'] for b in record['blocks']]
    assert len(weights) == num_blocks == 18
    assert all(0 < w < 1 for w in weights)


# -------------------------------------------------------- CohortSanityHook
def _sanity_runner(num_iters_before, constant_now=(), constant_before=()):
    runner = SimpleNamespace(
        message_hub=MessageHub.get_instance(_unique('sanity')),
        model=SimpleNamespace(num_classes=10),
        epoch=1,
        iter=num_iters_before)
    _log_losses(runner.message_hub, num_iters_before, constant_before)
    return runner


def _run_epoch(hook, runner, num_iters, constant=()):
    hook.before_train_epoch(runner)
    _log_losses(runner.message_hub, num_iters, constant)
    runner.iter += num_iters
    hook.after_train_epoch(runner)


def test_sanity_constant_loss(warnings_log):
    hook = CohortSanityHook()
    runner = _sanity_runner(4, constant_before=('contrast.loss_icl', ))
    _run_epoch(hook, runner, 5)
    assert warnings_log == []  # constant only before this epoch
    _run_epoch(hook, runner, 5, constant=('aggregator.peer0.loss_ce', ))
    assert len(warnings_log) == 1
    assert ('`aggregator.peer0.loss_ce` was 0 at each of the 5 iterations '
            'of epoch 2') \
        in warnings_log[0]


def test_sanity_member_at_chance(warnings_log):
    hook = CohortSanityHook()
    runner = _sanity_runner(0)
    metrics = {
        'member0/accuracy/top1': 10.5,
        'member1/accuracy/top1': 60.,
        'ensemble/accuracy/top1': 11.,
        'member0/accuracy/top5': 50.
    }
    hook.after_val_epoch(runner, metrics)
    assert warnings_log == []  # first validation: too early
    hook.after_val_epoch(runner, metrics)
    assert len(warnings_log) == 1
    assert '`member0/accuracy/top1` is 10.50% at validation 2' \
        in warnings_log[0]
    hook.after_val_epoch(runner, {'member0/accuracy/top1': 11.5})
    assert len(warnings_log) == 1


def test_contrast_index_hook_checks_bank_size_and_sets_epochs():
    from mmmcl.engine.hooks import ContrastIndexHook

    class Indexed(list):
        epoch = None

        def set_epoch(self, epoch):
            self.epoch = epoch

    class Wrapper(list):  # e.g. a RepeatDataset around it

        def __init__(self, dataset):
            super().__init__(dataset)
            self.dataset = dataset

    indexed = Indexed(range(12))
    rows = [10]
    runner = SimpleNamespace(
        model=SimpleNamespace(bank_rows=lambda: rows[0]),
        train_dataloader=SimpleNamespace(dataset=Wrapper(indexed)),
        epoch=3)
    hook = ContrastIndexHook()
    with pytest.raises(ValueError, match='have 10 rows.*12 items'):
        hook.before_train(runner)
    rows[0] = 12
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    assert indexed.epoch == 3
    # no banks, no indexed dataset: nothing to do
    hook.before_train(
        SimpleNamespace(model=SimpleNamespace(bank_rows=lambda: None)))
    hook.before_train_epoch(
        SimpleNamespace(train_dataloader=SimpleNamespace(dataset=[]),
                        epoch=0))
