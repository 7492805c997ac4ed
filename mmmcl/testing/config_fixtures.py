"""What every config builds: parameter counts and losses on a fixed batch.

:func:`measure_config` is the fixture of one config; the stored fixture
(``tests/data/config_fixtures.json``, written by
``tools/misc/make_config_fixtures.py``) keeps them for all, so that a
refactoring of the configs or of the distillers shows any change in the
model a config builds or in the losses it computes.
"""
import copy
from pathlib import Path
from typing import Dict, List, Union

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.registry import MODELS
from .train_progress import train_progress

BATCH = 4
SEED = 0
# ImageNet members at 64x64 (their last stage: 2x2) keep the check short
IMAGENET_SIZE = 64
CIFAR_SIZE = 32
# a memory bank of 16 rows, 4 negatives a sample (ImageNet: 1.28M, 8192)
BANK_ROWS, BANK_NEGATIVES = 16, 4


def config_files(root: Union[str, Path]) -> Dict[str, List[Path]]:
    """The training configs under ``root`` (``configs/``): ``classification``
    (every method folder) and ``transfer`` (mmdet and mmseg)."""
    root = Path(root)
    return dict(
        classification=sorted(
            p for p in root.glob('*/*.py')
            if p.parent.name not in ('_base_', 'transfer')),
        transfer=sorted(root.glob('transfer/*/*.py')))


def count_tensors(model: torch.nn.Module) -> Dict[str, int]:
    """Numbers of trainable and of all parameters, and of buffer elements."""
    return dict(
        trainable=sum(p.numel() for p in model.parameters()
                      if p.requires_grad),
        params=sum(p.numel() for p in model.parameters()),
        buffers=sum(b.numel() for b in model.buffers()))


def _fixed_batch(cfg: Config, generator: torch.Generator) -> dict:
    """``BATCH`` random uint8 images (one per view of a multi-view
    loader), labels ``i % 2`` and, for a memory bank, fixed bank rows."""
    size = IMAGENET_SIZE if cfg.data_preprocessor.num_classes == 1000 \
        else CIFAR_SIZE
    pipeline = cfg.train_dataloader.dataset.get('pipeline') or []
    views = [t.num_views for t in pipeline if t.type.endswith('MultiView')]
    images = [
        torch.randint(0, 256, (BATCH, 3, size, size),
                      dtype=torch.uint8, generator=generator)
        for _ in range(views[0] if views else 1)
    ]
    samples = [DataSample().set_gt_label(i % 2) for i in range(BATCH)]
    if cfg.train_dataloader.dataset.type == 'ContrastIndexDataset':
        rows = torch.randint(0, BANK_ROWS, (BATCH, BANK_NEGATIVES + 2),
                             generator=generator)
        rows[:, 0] = torch.arange(BATCH)
        for sample, row in zip(samples, rows):
            sample.set_field(row, 'contrast_idx', field_type='metainfo')
    return dict(inputs=images if views else images[0], data_samples=samples)


def _classification(cfg: Config) -> Dict[str, Union[int, Dict]]:
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    for term in model_cfg.get('terms', {}).values():
        if term.get('contrast_loss', {}).get('num_samples'):
            term.contrast_loss.num_samples = BANK_ROWS
    torch.manual_seed(SEED)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    result = count_tensors(model)
    data = model.data_preprocessor(
        _fixed_batch(cfg, torch.Generator().manual_seed(SEED)), True)
    with torch.no_grad(), train_progress():  # the first step: ramps at 0
        losses = model(**data, mode='loss')
    result['losses'] = {k: float(v) for k, v in sorted(losses.items())}
    return result


def _transfer(cfg: Config) -> Dict[str, int]:
    scope = cfg.default_scope
    if scope == 'mmdet':
        from mmdet.registry import MODELS as registry
    else:
        from mmseg.registry import MODELS as registry
    with DefaultScope.overwrite_default_scope(scope):
        return count_tensors(registry.build(cfg.model))


def measure_config(path: Union[str, Path]) -> Dict[str, Union[int, Dict]]:
    """The fixture of one config.

    Every config: ``trainable``, ``params`` and ``buffers`` (see
    :func:`count_tensors`) of its model as built (a memory bank with
    ``BANK_ROWS`` rows). A classification config also gives ``losses``,
    its ``mode='loss'`` dict after ``init_weights`` from seed ``SEED``, in
    train mode at epoch and iteration 0, on ``BATCH`` images of 32x32
    (64x64 for ImageNet): one batch a view for multi-view loaders,
    ``BANK_NEGATIVES`` negatives a sample for memory banks.
    """
    cfg = Config.fromfile(str(path))
    if cfg.get('default_scope') in ('mmdet', 'mmseg'):
        return _transfer(cfg)
    return _classification(cfg)
