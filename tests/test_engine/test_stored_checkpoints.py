"""Checkpoints of today's distillers keep resuming and exporting.

``tests/data/checkpoints/{lmcl,one}_epoch_1.pth`` are epoch 1 of 2 of the
tiny configs below, as mmengine's Runner wrote them at commit 526ca4a,
before the two distillers merged into one (L-MCL: the old
``CohortDistiller``, ``members.N.*`` keys, with its ``cohort`` and ``meta``
optimizers; ONE: an ``OnlineKDDistiller``); ``epoch_2_losses.json`` holds the
losses of epoch 2 of the same runs. They stand for the checkpoints users
have: keep them as they are when the distillers change (a key map on load
must bring them in). They were written by::

    python tests/test_engine/test_stored_checkpoints.py

The resume checks do not depend on key names: every stored tensor
(weights, statistics, optimizer states) must come back, and the resumed
epoch must compute the stored losses (mmengine's resume loads non-strictly:
a renamed key would leave a fresh weight silently). The one exception is
the loss-weight ramp's t (``loss_ramps.N.progress``, ONE), which the ramp
now reads from the runner's MessageHub: it must equal the epoch before the
resumed one. Each exported backbone
must hold the member's (peer's) tensors as the stored file lays them out.
"""
import copy
import json
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmmcl.apis import export_backbone
from mmmcl.utils import load_from_local

REPO = Path(__file__).resolve().parents[2]
STORED = REPO / 'tests/data/checkpoints'
RAMP_T = re.compile(r'loss_ramps\.\d+\.progress')
LOSSES = STORED / 'epoch_2_losses.json'
CONFIGS = dict(
    lmcl=REPO / 'configs/lmcl/lmcl_resnet20x2_1xb100-15e_mnist5k.py',
    one=REPO / 'configs/one/one_resnet20_1xb100-15e_mnist5k.py')
# 60 training images in batches of 10 digits x 2: 3 iterations an epoch
TINY_RUN = {
    'train_dataloader.batch_size': 20,
    'train_dataloader.dataset.num_per_class': 6,
    'train_dataloader.batch_sampler.num_per_class': 2,
    'val_dataloader.dataset.num_per_class': 2,
    'train_cfg.max_epochs': 2,
}
# L-MCL of two ResNet-18 of width 4 (2 stages: one auxiliary branch each),
# a meta step every 2 iterations; ONE of a ResNet-8 with 2 branches
TINY_MODEL = dict(
    lmcl={
        **{
            f'model.peers.members.{m}.{key}': value
            for m in (0, 1) for key, value in {
                'backbone.type': 'mmpretrain.ResNet',
                'backbone.depth': 18,
                'backbone.stem_channels': 4,
                'backbone.base_channels': 4,
                'backbone.out_indices': (2, 3),
                'head.in_channels': 32,
            }.items()
        },
        'model.terms.contrast.embed_dim': 8,
        'model.meta.proj_dim': 8,
        'model.meta.interval': 2,
    },
    one={
        'model.peers.classifier.backbone.depth': 8,
        'model.peers.num_branches': (2, ),
        'model.teachers.ensemble.target.num_branches': 2,
    })


def tiny_cfg(method: str, work_dir: Path) -> Config:
    """The MNIST-5k config of ``method`` with the tiny model and run."""
    cfg = Config.fromfile(CONFIGS[method])
    cfg.merge_from_dict({**TINY_RUN, **TINY_MODEL[method]})
    cfg.default_hooks.pop('cohort_plot')
    cfg.work_dir = str(work_dir)
    return cfg


class Snapshot(Hook):
    """Where the run stands when training starts (after the resume)."""

    def before_train(self, runner) -> None:
        self.progress = (runner.epoch, runner.iter)
        self.state = copy.deepcopy(runner.model.state_dict())
        self.optimizer = copy.deepcopy(runner.optim_wrapper.state_dict())


def contents(value) -> Counter:
    """The tensors inside nested dicts and lists, whatever their keys:
    dtype, shape and bytes of each."""
    if isinstance(value, torch.Tensor):
        return Counter([(str(value.dtype), tuple(value.shape),
                         value.cpu().numpy().tobytes())])
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return Counter()
    return sum(map(contents, value), Counter())


def hyperparameters(optimizer: dict) -> list:
    """Each parameter group's settings and size, of every wrapper."""
    return sorted(
        repr(sorted((k, len(v) if k == 'params' else v)
                    for k, v in group.items()))
        for wrapper in optimizer.values()
        for group in wrapper['param_groups'])


def train_losses(runner: Runner) -> list:
    return [float(v) for v in runner.message_hub.get_scalar(
        'train/loss').data[0]]


@pytest.mark.parametrize('method', sorted(CONFIGS))
def test_resumes(method, tmp_path):
    stored = STORED / f'{method}_epoch_1.pth'
    checkpoint = load_from_local(str(stored), map_location='cpu')
    cfg = tiny_cfg(method, tmp_path)
    cfg.update(resume=True, load_from=str(stored))
    runner = Runner.from_cfg(cfg)
    snapshot = Snapshot()
    runner.register_hook(snapshot, priority='VERY_HIGH')
    runner.train()

    assert snapshot.progress == (1, 3)
    state = checkpoint['state_dict']
    ramp_t = [state.pop(k) for k in list(state) if RAMP_T.fullmatch(k)]
    assert len(ramp_t) == (method == 'one')
    assert all(float(t) == snapshot.progress[0] - 1 for t in ramp_t)
    assert contents(snapshot.state) == contents(state)
    assert contents(snapshot.optimizer) == contents(checkpoint['optimizer'])
    assert hyperparameters(snapshot.optimizer) == hyperparameters(
        checkpoint['optimizer'])
    # weights, statistics, momenta, lr and ramp as they were: the losses
    # of the stored run's epoch 2
    assert runner.iter == 6
    expected = json.loads(LOSSES.read_text())[method]
    assert train_losses(runner)[-3:] == pytest.approx(expected, rel=1e-4)


def stored_backbone(state: Dict[str, torch.Tensor], method: str,
                    index: int) -> Dict[str, torch.Tensor]:
    """Member (peer) ``index``'s backbone as the stored checkpoint holds
    it: ``members.{i}.backbone.*`` of the cohort; ONE's trunk
    ``peers.classifier.backbone.*`` with, for branch i > 0, its last stage
    ``peers.nodes.{i}.layers.0.*``."""
    prefix = f'members.{index}.backbone.' if method == 'lmcl' \
        else 'peers.classifier.backbone.'
    weights = {
        k[len(prefix):]: v
        for k, v in state.items() if k.startswith(prefix)
    }
    node = f'peers.nodes.{index}.layers.0.'
    branch = {
        f'stages.2.{k[len(node):]}': v
        for k, v in state.items() if k.startswith(node)
    }
    assert set(branch) <= set(weights)
    assert bool(branch) == (method == 'one' and index > 0)
    return {**weights, **branch}


@pytest.mark.parametrize('method', sorted(CONFIGS))
@pytest.mark.parametrize('index', [0, 1])
def test_exports(method, index, tmp_path):
    """The export with the config stored in the checkpoint, as a user runs
    it on an old checkpoint (tools/model_converters/export_backbone.py)."""
    stored = STORED / f'{method}_epoch_1.pth'
    out = tmp_path / f'member{index}.pth'
    export_backbone(str(stored), index, str(out))
    export = load_from_local(str(out), map_location='cpu')['state_dict']
    expected = stored_backbone(
        load_from_local(str(stored), map_location='cpu')['state_dict'],
        method, index)
    assert export.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(export[key], value), key


def record() -> None:
    """Train both tiny runs; store epoch 1 and epoch 2's losses."""
    STORED.mkdir(parents=True, exist_ok=True)
    losses = {}
    with tempfile.TemporaryDirectory() as work_dir:
        for method in sorted(CONFIGS):
            runner = Runner.from_cfg(
                tiny_cfg(method, Path(work_dir) / method))
            runner.train()
            shutil.copy(Path(work_dir) / method / 'epoch_1.pth',
                        STORED / f'{method}_epoch_1.pth')
            losses[method] = train_losses(runner)[-3:]
    LOSSES.write_text(json.dumps(losses, indent=1) + '\n')


if __name__ == '__main__':
    torch.set_num_threads(1)
    record()
