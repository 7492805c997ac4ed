"""Every CIFAR-100 cohort config builds its model from the config alone and
takes a training step's forward on 32x32 inputs (CIFAR-100 itself is not
needed: a batch of random images stands in)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample

from mmmcl.registry import MODELS
from mmmcl.testing import train_progress
from mmmcl.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(REPO.glob('configs/*/*_cifar100.py'))


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.stem)
def test_builds_and_computes_its_losses(config):
    register_all_modules()
    cfg = Config.fromfile(config)
    assert cfg.train_dataloader.dataset.type.endswith('CIFAR100')
    model_cfg = cfg.model
    if 'data_preprocessor' not in model_cfg:
        model_cfg.data_preprocessor = cfg.data_preprocessor
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    assert model.num_classes == 100
    inputs = torch.randn(4, 3, 32, 32)
    samples = [DataSample().set_gt_label(i % 2) for i in range(4)]
    with train_progress():  # the first step: a ramp at its start
        losses = model(inputs, samples, mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())
    names = {f'peer{p}.loss_ce' for p in range(model.peers.num_peers)}
    assert names <= set(losses)
