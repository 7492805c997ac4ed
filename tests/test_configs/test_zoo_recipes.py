"""The zoo's CIFAR-100 configs against their references' code.

Parameter counts: the trainable parameters of each reference's network for
100 classes, counted by building its model class (what its optimizers
train; PCL's temporal mean excluded): ONE Lan1991Xu/ONE_NeurIPS2018
``models/cifar/resnet.py`` (``--depth 110``: 18 bottleneck blocks a stage),
CL-ILR and OKDDip winycg/MCL-OKD ``models/`` and DefangChen/OKDDip
``models/resnet_GL.py``, PCL the re-implementation's ``src/models``, FFL
Jangho-Kim/FFL-pytorch ``our_network.py`` + ``Fusion_module`` (18 basic
blocks a stage for depth 110, a 64-channel fusion module).
"""
from pathlib import Path

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmcl.registry import MODELS
from mmmcl.utils import register_all_modules

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
REFERENCE_PARAMS = {
    'one/one_resnet32_1xb128-300e_cifar100.py': 1_193_189,
    'one/one_resnet110_1xb128-300e_cifar100.py': 4_363_653,
    'cl_ilr/cl-ilr_resnet32_1xb128-300e_cifar100.py': 1_642_016,
    'cl_ilr/cl-ilr_resnet110_1xb128-300e_cifar100.py': 4_077_536,
    'okddip/okddip_resnet32_1xb128-300e_cifar100.py': 1_554_272,
    'okddip/okddip_resnet110_1xb128-300e_cifar100.py': 3_874_016,
    'pcl/pcl_resnet32_1xb128-300e_cifar100.py': 1_212_384,
    'pcl/pcl_resnet110_1xb128-300e_cifar100.py': 3_038_944,
    'ffl/ffl_resnet32_1xb128-300e_cifar100.py': 849_148,
    'ffl/ffl_resnet110_1xb128-300e_cifar100.py': 3_074_748,
}
# (milestones or None for cosine, epochs)
SCHEDULES = {
    'one': ([151, 225], 300),
    'cl_ilr': (None, 300),
    'okddip': ([150, 225], 300),
    'kdcl': (None, 300),
    'pcl': ([150, 225], 300),
    'ffl': ([150, 225], 301),
}
ZOO = sorted(str(p.relative_to(CONFIGS)) for method in SCHEDULES
             for p in (CONFIGS / method).glob('*cifar100.py'))


@pytest.fixture(autouse=True)
def registered():
    register_all_modules()


def test_zoo_configs_found():
    assert len(ZOO) == 12 and set(REFERENCE_PARAMS) <= set(ZOO)


@pytest.mark.parametrize('config', sorted(REFERENCE_PARAMS))
def test_trainable_parameters_equal_the_reference_network(config):
    cfg = Config.fromfile(CONFIGS / config)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(cfg.model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == REFERENCE_PARAMS[config]


@pytest.mark.parametrize('config', ZOO)
def test_schedule_and_sampler_as_the_reference(config):
    """Uniform batches of 128 (no class-balanced sampler), each reference's
    lr schedule and epochs."""
    cfg = Config.fromfile(CONFIGS / config)
    loader = cfg.train_dataloader
    assert loader.batch_size == 128
    assert loader.get('batch_sampler') is None
    assert loader.sampler == dict(type='DefaultSampler', shuffle=True)
    milestones, epochs = SCHEDULES[config.split('/')[0]]
    assert cfg.train_cfg.max_epochs == epochs
    scheduler = cfg.param_scheduler
    if milestones is None:
        assert scheduler.type == 'CosineAnnealingLR'
    else:
        assert scheduler.type == 'MultiStepLR'
        assert list(scheduler.milestones) == milestones
        assert scheduler.gamma == 0.1


def test_lmcl_and_mcl_keep_class_balanced_batches():
    for config in ('lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py',
                   'mcl/mcl_resnet32x2_1xb128-300e_cifar100.py'):
        cfg = Config.fromfile(CONFIGS / config)
        assert cfg.train_dataloader.batch_sampler == dict(
            type='ClassBalancedBatchSampler', num_per_class=2)


def test_ffl_pads_by_reflection():
    cfg = Config.fromfile(CONFIGS / 'ffl/ffl_resnet32_1xb128-300e_cifar100.py')
    crop = cfg.train_dataloader.dataset.pipeline[0]
    assert crop.type == 'mmpretrain.RandomCrop'
    assert crop.padding_mode == 'reflect'


@pytest.mark.parametrize('config', [
    'one/one_resnet32_1xb128-300e_cifar100.py',
    'cl_ilr/cl-ilr_resnet110_1xb128-300e_cifar100.py',
    'okddip/okddip_resnet32_1xb128-300e_cifar100.py',
    'pcl/pcl_resnet32_1xb128-300e_cifar100.py',
    'ffl/ffl_resnet110_1xb128-300e_cifar100.py',
])
def test_classifiers_start_as_the_reference(config):
    """PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    (std 1/sqrt(3 fan_in)), for weight and bias, instead of mmpretrain's
    Normal(0, 0.01) and zero bias."""
    cfg = Config.fromfile(CONFIGS / config)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    heads = [m for m in model.peers.modules() if isinstance(m, nn.Linear)]
    assert heads
    for fc in heads:
        bound = fc.in_features**-0.5
        assert fc.weight.abs().max() <= bound
        assert fc.weight.std() > 0.8 * bound / 3**0.5
        assert 0 < fc.bias.abs().max() <= bound
    cfg.model.head_init = 'kaiming'
    with pytest.raises(ValueError, match='head_init'):
        MODELS.build(cfg.model)


def test_paramwise_groups_are_plain_dicts():
    """FFL's fusion group (``paramwise_cfg``): every param group the
    cohort's optimizer holds is a plain dict, as torch builds them. MMEngine
    returns ConfigDicts there, which torch.compile's tracing of the
    optimizer step cannot read (InternalTorchDynamoError)."""
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(CONFIGS / 'ffl/ffl_resnet32_1xb128-300e_cifar100.py')
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    register_all_modules()
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(cfg.model)
        wrappers = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = wrappers['cohort'].optimizer.param_groups
    assert len({g['weight_decay'] for g in groups}) > 1  # paramwise groups
    assert all(type(g) is dict for g in groups)
