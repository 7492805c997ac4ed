"""The ImageNet configs build and train on a tiny ImageNet-style folder."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(REPO.glob('configs/*/*_in1k.py'))
# the others run with `pytest -m slow` (ResNet-34/50 pairs: ~30 s each)
QUICK = {
    'lmcl_shufflenetv2-1xx2_8xb32-100e_in1k', 'mcl_resnet18x2_8xb32-100e_in1k',
    'baseline_resnet18x2_8xb32-100e_in1k'
}
NUM_CLASSES, PER_CLASS = 4, 3


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """data/imagenet-style train/ and val/ with 4 classes x 3 JPEGs."""
    root = tmp_path_factory.mktemp('imagenet')
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        for c in range(NUM_CLASSES):
            folder = root / split / f'n{c:08d}'
            folder.mkdir(parents=True)
            for i in range(PER_CLASS):
                pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f'{i}.JPEG')
    return root


def tiny(config: Path, data_root: Path, work_dir: Path) -> Config:
    """The config on the tiny folder: 32 px crops, batches of 4, 1 epoch,
    4 negatives per sample."""
    cfg = Config.fromfile(config)
    classes = dict(classes=[f'c{i}' for i in range(NUM_CLASSES)])
    dataset = cfg.train_dataloader.dataset
    images = dataset.dataset if dataset.type == 'ContrastIndexDataset' \
        else dataset
    images.update(data_root=str(data_root), metainfo=classes)
    images.pipeline[1].scale = 32
    if dataset.type == 'ContrastIndexDataset':
        dataset.num_negatives = 4
        cfg.model.terms.contrast.contrast_loss.num_samples = \
            NUM_CLASSES * PER_CLASS
    cfg.test_dataloader.dataset.update(
        data_root=str(data_root), metainfo=classes)
    cfg.test_dataloader.dataset.pipeline[1].scale = 36
    cfg.test_dataloader.dataset.pipeline[2].crop_size = 32
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.update(batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.mark.parametrize('config', [
    pytest.param(c, marks=() if c.stem in QUICK else pytest.mark.slow)
    for c in CONFIGS
], ids=lambda c: c.stem)
def test_trains_and_tests_on_a_tiny_folder(config, image_folder, tmp_path):
    runner = Runner.from_cfg(tiny(config, image_folder, tmp_path))
    runner.train()
    assert runner.iter == NUM_CLASSES * PER_CLASS // 4
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == runner.iter and np.isfinite(losses).all()
    if 'contrast' in runner.model.terms:
        assert 'train/contrast.loss_icl' in runner.message_hub.log_scalars
    metrics = runner.test()
    assert 0 <= metrics['ensemble/accuracy/top1'] <= 100


def test_covers_the_paper_settings():
    names = {c.stem for c in CONFIGS}
    assert {
        'lmcl_resnet34x2_8xb32-100e_in1k', 'lmcl_resnet50x2_8xb32-100e_in1k',
        'lmcl_shufflenetv2-1xx2_8xb32-100e_in1k',
        'lmcl_resnet18-resnet50_8xb32-100e_in1k',
        'mcl_resnet18x2_8xb32-100e_in1k', 'mcl_resnet18x4_8xb32-100e_in1k'
    } <= names
    banks = 0
    for name in names:
        cfg = Config.fromfile(REPO / 'configs' / name.split('_')[0] /
                              f'{name}.py')
        if 'terms' in cfg.model:
            loss = cfg.model.terms.contrast.contrast_loss
            banks += 1
            assert loss.type == 'MemoryBankContrastLoss'
            assert loss.num_members == len(cfg.model.peers.members)
            assert (loss.tau, loss.momentum) == (0.07, 0.5)
            assert cfg.train_dataloader.dataset.num_negatives == 8192
        if cfg.model.get('meta') is not None:  # the reference's meta step
            assert (cfg.model.meta.momentum_adjoint, cfg.model.meta.replay_bn,
                    cfg.model.meta.virtual_buffers) == ('reference',
                                                        'reference',
                                                        'carried')
    assert banks == 6  # the L-MCL and MCL configs
