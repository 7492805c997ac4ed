"""Checkpoints load with weights_only=True: ours do, foreign objects do not."""
import inspect
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from torch.utils.data import Dataset

import mmmcl
from mmmcl.utils import (SAFE_GLOBALS, UnsafeCheckpointError, load_from_local,
                         register_safe_globals)

PACKAGE = Path(mmmcl.__file__).parent


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.register_buffer('bank', torch.zeros(4, 2))

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.fc(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return list(out)


class _ToyData(Dataset):
    metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(inputs=torch.full((2, ), float(i)), labels=i % 2)


class _NumpyMetric(BaseMetric):
    """Returns numpy values, as mmseg's IoUMetric does."""

    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples))

    def compute_metrics(self, results):
        return dict(score=np.float64(0.5), count=np.int64(sum(results)))


class _RunsCode:
    """Unpickling this with plain pickle runs ``os.system``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _Getattr:
    """Reaches an attribute that is not a HistoryBuffer statistic."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '_set_default_statistics')


@pytest.fixture(scope='module')
def runner_ckpt(tmp_path_factory):
    """``iter_2.pth`` of a 2-iteration Runner run (hub, optimizer, LR)."""
    work_dir = tmp_path_factory.mktemp('runner')
    # the context drops the Runner's default scope afterwards: later tests
    # must not build in scope 'mmengine'
    with DefaultScope.overwrite_default_scope('mmengine'):
        _train_toy(work_dir)
    return work_dir / 'iter_2.pth'


def _train_toy(work_dir):
    loader = dict(
        dataset=_ToyData(),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_size=2,
        num_workers=0)
    runner = Runner(
        model=_ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=Evaluator([_NumpyMetric()]),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.5, by_epoch=False, end=1),
            dict(type='CosineAnnealingLR', T_max=10, by_epoch=False)
        ],
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=1,
                by_epoch=False,
                save_best='score',
                rule='greater')),
        log_level='WARNING',
        randomness=dict(seed=0),
        default_scope='mmengine',
        experiment_name=f'safe_load_{work_dir.name}')
    runner.train()


def _save(obj, path):
    torch.save(obj, path)
    return str(path)


def test_runner_checkpoint_has_only_allowlisted_globals(runner_ckpt):
    # every global in the file is one torch or mmmcl allows
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        str(runner_ckpt)) == []


def test_runner_checkpoint_loads(runner_ckpt):
    ckpt = CheckpointLoader.load_checkpoint(str(runner_ckpt))
    assert ckpt['meta']['iter'] == 2
    assert 'bank' in ckpt['state_dict']
    hub = ckpt['message_hub']
    loss = hub['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    assert len(loss.data[0]) == 2
    assert loss.mean() == pytest.approx(float(np.mean(loss.data[0])))
    assert isinstance(hub['runtime_info']['eta'], np.floating)
    assert hub['runtime_info']['best_score'] == 0.5
    assert hub['log_scalars']['val/count'].current() == 4
    states = ckpt['optimizer']['state'].values()
    assert states and all('momentum_buffer' in s for s in states)
    linear, cosine = ckpt['param_schedulers']
    assert linear['start_factor'] == 0.5 and cosine['T_max'] == 10
    assert cosine['_global_step'] == 2


def test_load_checkpoint_into_model(runner_ckpt):
    model = _ToyModel()
    load_checkpoint(model, str(runner_ckpt), map_location='cpu')
    saved = torch.load(str(runner_ckpt), weights_only=True)['state_dict']
    assert torch.equal(model.fc.weight, saved['fc.weight'])


@pytest.mark.parametrize('force_unsafe_env', [False, True])
def test_foreign_object_is_refused(tmp_path, monkeypatch, force_unsafe_env):
    if force_unsafe_env:
        # torch lets this variable switch weights_only off where the caller
        # did not set it; ours sets it, so the file stays refused
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'pwned'
    path = _save({
        'state_dict': {
            'w': torch.ones(1)
        },
        'x': _RunsCode(marker)
    }, tmp_path / 'evil.pth')
    for load in (lambda: CheckpointLoader.load_checkpoint(path),
                 lambda: load_checkpoint(nn.Linear(1, 1), path)):
        with pytest.raises(UnsafeCheckpointError) as info:
            load()
        message = str(info.value)
        assert path in message
        assert f'{os.system.__module__}.system' in message
        assert 'allow-listed' in message and 'trust' in message
        assert 'weights_only=False' not in message
        assert not marker.exists()
    assert isinstance(info.value, pickle.UnpicklingError)


def test_getattr_is_restricted_to_history_buffer(tmp_path):
    path = _save({'x': _Getattr()}, tmp_path / 'getattr.pth')
    with pytest.raises(UnsafeCheckpointError, match='_set_default_statistics'):
        load_from_local(path, map_location='cpu')


def test_object_arrays_are_refused(tmp_path):
    path = _save({'x': np.array(['a', 1], dtype=object)}, tmp_path / 'o.pth')
    with pytest.raises(UnsafeCheckpointError, match='ObjectDType'):
        load_from_local(path, map_location=None)


def test_numpy_values_round_trip(tmp_path):
    values = dict(
        rng=np.random.RandomState(0).get_state(),
        scalars=[np.float32(1.5), np.int64(3), np.bool_(True)],
        arrays=[np.arange(3, dtype=d) for d in ('u1', 'i4', 'f2', 'f8')])
    loaded = load_from_local(_save(values, tmp_path / 'np.pth'), None)
    assert loaded['rng'][0] == 'MT19937'
    assert np.array_equal(loaded['rng'][1], values['rng'][1])
    assert loaded['scalars'] == values['scalars']
    for got, want in zip(loaded['arrays'], values['arrays']):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / 'nowhere' / 'epoch_3.pth')
    with pytest.raises(FileNotFoundError) as info:
        CheckpointLoader.load_checkpoint(path)
    assert path in str(info.value)
    assert info.value.filename == path


def test_weights_only_is_never_disabled(tmp_path):
    # torch.load is torch's own, with its default untouched
    assert torch.load is torch.serialization.load
    default = inspect.signature(torch.load).parameters['weights_only'].default
    assert default is None
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    # so a plain torch.load still refuses foreign objects
    marker = tmp_path / 'pwned'
    path = _save({'x': _RunsCode(marker)}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    assert not marker.exists()
    # and no mmmcl source switches it off
    offenders = [
        str(p) for p in PACKAGE.rglob('*.py')
        if 'weights_only=False' in p.read_text()
    ]
    assert offenders == []


def test_local_loader_is_ours_and_registration_idempotent():
    assert CheckpointLoader._get_checkpoint_loader('a/b.pth') is \
        load_from_local
    before = len(torch.serialization.get_safe_globals())
    register_safe_globals()
    register_safe_globals()
    assert len(torch.serialization.get_safe_globals()) == before
    assert set(SAFE_GLOBALS) <= set(torch.serialization.get_safe_globals())
