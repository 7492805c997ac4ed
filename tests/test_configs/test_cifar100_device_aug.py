"""``cifar100_bs128_device_aug.py``: crop and flip leave the workers for the
preprocessors, single-view (DML) and multi-view (KDCL) leaves train on it,
and ``cifar100_bs128.py`` keeps its CPU transforms."""
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate, pseudo_collate
from mmengine.dataset.base_dataset import Compose

from mmmcl.registry import MODELS
from mmmcl.utils import register_all_modules

BASE = Path(__file__).resolve().parents[2] / 'configs/_base_'
DEVICE_AUG = BASE / 'datasets/cifar100_bs128_device_aug.py'
BASES = [
    str(BASE / 'models/cifar_members.py'),
    str(DEVICE_AUG),
]
# a DML leaf and the KDCL leaf's body over the device-side dataset base
DML = f'''_base_ = {[str(BASE / 'models/dml.py')] + BASES}
model = dict(
    peers=dict(members=[{{{{_base_.resnet20}}}}, {{{{_base_.resnet20}}}}]))
'''
KDCL = f'''_base_ = {[str(BASE / 'models/kdcl.py')] + BASES}
model = dict(
    peers=dict(members=[{{{{_base_.resnet20}}}}, {{{{_base_.resnet20}}}}]),
    num_classes=100,
    data_preprocessor={{{{_base_.multiview_preprocessor}}}})
train_dataloader = dict(
    collate_fn=dict(type='default_collate'),
    dataset=dict(pipeline=[
        dict(
            type='mmpretrain.MultiView',
            num_views=2,
            transforms=[{{{{_base_.train_transforms}}}}]),
        dict(type='mmpretrain.PackInputs')
    ]))
'''


def types(pipeline) -> list:
    return [t['type'] for t in pipeline]


def test_crop_and_flip_move_to_the_preprocessors():
    cpu = Config.fromfile(BASE / 'datasets/cifar100_bs128.py')
    device = Config.fromfile(DEVICE_AUG)
    assert types(cpu.train_dataloader.dataset.pipeline) == [
        'mmpretrain.RandomCrop', 'mmpretrain.RandomFlip',
        'mmpretrain.PackInputs'
    ]
    assert 'batch_augments' not in cpu.data_preprocessor
    assert types(device.train_dataloader.dataset.pipeline) == [
        'mmpretrain.PackInputs'
    ]
    assert device.train_transforms == []
    assert device.test_dataloader == cpu.test_dataloader
    crop, flip = (cpu.train_transforms[0], cpu.train_transforms[1])
    augment = device.data_preprocessor.batch_augments.augments
    assert augment == device.multiview_preprocessor.view_augment
    assert (augment.crop_size, augment.padding, augment.flip_prob) == (
        crop.crop_size, crop.padding, flip.prob)
    assert (augment.mean, augment.std) == (cpu.data_preprocessor.mean,
                                           cpu.data_preprocessor.std)


def train_batch(cfg: Config, collate) -> dict:
    """Four random images through the config's train pipeline."""
    pipeline = Compose(cfg.train_dataloader.dataset.pipeline)
    rng = np.random.default_rng(0)
    return collate([
        pipeline(
            dict(img=rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                 gt_label=i % 2)) for i in range(4)
    ])


def build(cfg: Config):
    register_all_modules()
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def test_single_view_leaf_trains(tmp_path):
    path = tmp_path / 'dml_device_aug.py'
    path.write_text(DML)
    cfg = Config.fromfile(path)
    model = build(cfg)
    data = train_batch(cfg, pseudo_collate)
    test = model.data_preprocessor(data, False)['inputs']
    train = model.data_preprocessor(data, True)
    assert train['inputs'].shape == test.shape == (4, 3, 32, 32)
    assert not torch.equal(train['inputs'], test)
    losses = model(**train, mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())


def test_multi_view_leaf_crops_each_view(tmp_path):
    path = tmp_path / 'kdcl_device_aug.py'
    path.write_text(KDCL)
    cfg = Config.fromfile(path)
    model = build(cfg)
    data = train_batch(cfg, default_collate)
    views = data['inputs']
    assert len(views) == 2 and torch.equal(views[0], views[1])
    train = model.data_preprocessor(data, True)
    assert not torch.equal(train['inputs'][0], train['inputs'][1])
    losses = model(**train, mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())
