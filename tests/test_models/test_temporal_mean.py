"""The temporal mean's BN statistics: the peers' or its own (PCL)."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample

from mmmcl.registry import MODELS
from mmmcl.testing import train_progress
from mmmcl.utils import register_all_modules

CONFIG = Path(__file__).resolve().parents[2] / \
    'configs/pcl/pcl_resnet20_1xb100-15e_mnist5k.py'


@pytest.mark.parametrize('own_buffers', [True, False])
def test_temporal_mean_buffers(own_buffers):
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    cfg.model.temporal_mean.own_buffers = own_buffers
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    gen = torch.Generator().manual_seed(0)
    views = [torch.randn(4, 3, 28, 28, generator=gen) for _ in range(3)]
    samples = [DataSample().set_gt_label(i % 2) for i in range(4)]
    with torch.no_grad():  # a temporal mean that lags the peers
        for p in model.temporal_mean.module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    # what the temporal mean's own train-mode forward leaves in its BN
    expected = copy.deepcopy(model.temporal_mean.module)
    with torch.no_grad():
        expected(views)
    with train_progress():  # the first step
        model.loss(views, samples)
    with torch.no_grad():  # a step of the peers
        for p in model.peers.parameters():
            p.add_(0.01)
    model.update_temporal_mean()
    for (name, b), own, peer in zip(
            model.temporal_mean.module.named_buffers(), expected.buffers(),
            model.peers.buffers()):
        torch.testing.assert_close(b, own if own_buffers else peer,
                                   rtol=0, atol=0, msg=name)
    running = [n for n, _ in model.temporal_mean.module.named_buffers()
               if n.endswith('running_mean')]
    assert running
    own_means = dict(expected.named_buffers())
    peer_means = dict(model.peers.named_buffers())
    assert any(not torch.equal(own_means[n], peer_means[n]) for n in running)
