"""The transfer configs build, run and load an export strictly: the export
given as ``model.backbone.init_cfg.checkpoint`` is what loads, a forgotten
path is an error, scratch is ``model.backbone.init_cfg=None``."""
import argparse
import copy
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / 'configs' / 'transfer'
CONFIGS = sorted(ROOT.glob('*/*.py'))
NUM_CONFIGS = {'mmdet': 9, 'mmseg': 14}
DET_DEMO = 'mmdet/faster-rcnn_cifar-r20-fpn_1xb8-8e_mnist-canvas.py'
SEG_DEMO = 'mmseg/fcn_cifar-r20_1xb8-300iter_mnist-canvas-96x96.py'
# Mask / Faster R-CNN R18 and R50 on COCO: the paper's transfer setting
PAPER = [
    f'mmdet/{m}-rcnn_{r}-fpn_8xb2-1x_coco.py' for m in ('faster', 'mask')
    for r in ('r18', 'r50')
]
# The command-line override the README documents.
OVERRIDE = 'model.backbone.init_cfg.checkpoint={}'
STRICT_INIT = dict(_scope_='mmmcl', type='Pretrained', checkpoint=None)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One intra-op thread: the inputs are tiny, and on a shared 2-core
    CPU two threads wait on each other (several times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rel(config: Path) -> str:
    return config.relative_to(ROOT).as_posix()


@lru_cache(maxsize=None)
def _load(path: str) -> Config:
    return Config.fromfile(path)


def load(config) -> Config:
    """A deep copy of the config (``Config.fromfile`` once per file): the
    tests edit nested fields."""
    return copy.deepcopy(_load(str(ROOT / config)))


def models_of(scope: str):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS


def build(cfg: Config) -> torch.nn.Module:
    """Build and initialise ``cfg.model`` under the config's scope, SyncBN
    turned into BN for one CPU process. For a backbone from scratch set
    ``cfg.model.backbone.init_cfg = None`` first."""
    scope = cfg.default_scope
    assert scope in ('mmdet', 'mmseg'), scope
    with DefaultScope.overwrite_default_scope(scope):
        model = models_of(scope).build(cfg.model)
        model = revert_sync_batchnorm(model)
        model.init_weights()
    return model


def strings(value):
    """Every str inside nested dicts / lists."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings(v)


def det_batch(num: int, size: int, with_gt: bool) -> dict:
    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(num):
        image = torch.zeros(3, size, size, dtype=torch.uint8)
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                scale_factor=(1., 1.)))
        if with_gt:
            boxes = []
            for _ in range(3):
                side = int(torch.randint(14, 32, (1, ), generator=g))
                x, y = torch.randint(size - side, (2, ), generator=g).tolist()
                image[:, y:y + side, x:x + side] = 200
                boxes.append([x, y, x + side, y + side])
            sample.gt_instances = InstanceData(
                bboxes=torch.tensor(boxes, dtype=torch.float32),
                labels=torch.randint(0, 10, (3, ), generator=g))
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def seg_batch(num: int, size: int, with_gt: bool) -> dict:
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(num):
        image = torch.zeros(3, size, size, dtype=torch.uint8)
        sample = SegDataSample(
            metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        if with_gt:
            label = torch.zeros(1, size, size, dtype=torch.long)
            for _ in range(3):
                side = int(torch.randint(14, 32, (1, ), generator=g))
                x, y = torch.randint(size - side, (2, ), generator=g).tolist()
                image[:, y:y + side, x:x + side] = 200
                label[:, y:y + side, x:x + side] = int(
                    torch.randint(1, 11, (1, ), generator=g))
            sample.gt_sem_seg = PixelData(data=label)
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_collects_every_config():
    assert CONFIGS, f'no config under {ROOT}'
    found = {
        scope: len(list((ROOT / scope).glob('*.py')))
        for scope in NUM_CONFIGS
    }
    assert found == NUM_CONFIGS
    assert len(CONFIGS) == sum(NUM_CONFIGS.values())


@pytest.mark.parametrize('config', CONFIGS, ids=rel)
def test_export_is_required_and_nothing_to_download(config):
    """mmmcl's strict init on every backbone, no path: building the
    backbone works, initialising it says how to give the export or to
    choose scratch."""
    cfg = load(config)
    assert cfg.default_scope == config.parent.name
    assert 'pretrained' not in cfg  # the old variable: gone
    assert cfg.model.backbone.init_cfg == STRICT_INIT
    assert cfg.model.get('pretrained') is None  # mmseg's segmentor key
    urls = [s for s in strings(cfg.model) if '://' in s]
    assert not urls, f'the model would download {urls}'
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        backbone = models_of(cfg.default_scope).build(cfg.model.backbone)
        with pytest.raises(ValueError) as e:
            backbone.init_weights()
    assert 'no checkpoint is given' in str(e.value)
    assert 'model.backbone.init_cfg.checkpoint=PATH' in str(e.value)
    assert 'from scratch, model.backbone.init_cfg=None' in str(e.value)


@pytest.mark.parametrize('config', PAPER)
def test_paper_setting(config):
    cfg = load(config)
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.frozen_stages,
            backbone.norm_eval) == ('ResNet', 1, True)
    assert backbone.depth == (18 if '_r18-' in config else 50)
    if backbone.depth == 18:
        assert cfg.model.neck.in_channels == [64, 128, 256, 512]
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.param_scheduler[-1].milestones == [8, 11]
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs


def _forward_det(model, cfg):
    """``test_step`` on one 64x64 image; the FPN levels' strides must be
    the anchors' (a mismatch would not fail, only train badly)."""
    levels = []
    model.neck.register_forward_hook(
        lambda module, args, out: levels.extend(out))
    with torch.no_grad():
        results = model.test_step(det_batch(1, 64, with_gt=False))
    assert len(results) == 1 and 'pred_instances' in results[0]
    anchors = (cfg.model.get('rpn_head') or cfg.model.bbox_head)
    strides = anchors.anchor_generator.strides
    assert len(levels) == len(strides)
    for level, stride in zip(levels, strides):
        if stride <= 64:
            assert level.shape[-1] == 64 // stride, (level.shape, stride)
    roi_head = cfg.model.get('roi_head')
    if roi_head:
        featmap = roi_head.bbox_roi_extractor.featmap_strides
        assert featmap == strides[:len(featmap)]


def _forward_seg(model):
    with torch.no_grad():
        data = model.data_preprocessor(
            seg_batch(1, 64, with_gt=False), training=False)
        logits = model(**data, mode='tensor')
    num_classes = model.decode_head.num_classes
    assert logits.shape[:2] == (1, num_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize('config', CONFIGS, ids=rel)
def test_builds_and_runs_forward(config):
    cfg = load(config)
    cfg.model.backbone.init_cfg = None  # scratch
    model = build(cfg)
    model.eval()
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        if cfg.default_scope == 'mmdet':
            _forward_det(model, cfg)
        else:
            _forward_seg(model)


@pytest.mark.parametrize('config', [DET_DEMO, SEG_DEMO])
def test_demo_trains_a_step(config):
    cfg = load(config)
    cfg.model.backbone.init_cfg = None  # scratch
    torch.manual_seed(0)
    model = build(cfg)
    model.train()
    batch = det_batch if cfg.default_scope == 'mmdet' else seg_batch
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        data = model.data_preprocessor(batch(2, 96, True), training=True)
        losses = model(**data, mode='loss')
        loss, log_vars = model.parse_losses(losses)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log_vars.values())
    assert loss > 0
    loss.backward()
    grads = [
        p.grad for p in model.backbone.parameters()
        if p.requires_grad and p.grad is not None
    ]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)


# (config, type of the member's backbone in mmpretrain / mmmcl)
LOADS = [
    ('mmdet/faster-rcnn_r18-fpn_8xb2-1x_coco.py',
     dict(type='mmpretrain.ResNet', depth=18)),
    ('mmdet/faster-rcnn_shufflenetv2-1x-fpn_8xb2-1x_coco.py',
     dict(type='mmpretrain.ShuffleNetV2', widen_factor=1.0)),
    (DET_DEMO, dict(type='mmmcl.CifarResNet', depth=20)),
    ('mmseg/deeplabv3_r18b-d8_4xb4-40k_voc12aug-512x512.py',
     dict(type='mmpretrain.ResNet', depth=18)),
    ('mmseg/fpn_mobilenetv2_4xb2-80k_cityscapes-512x1024.py',
     dict(type='mmpretrain.MobileNetV2', widen_factor=1.0)),
    (SEG_DEMO, dict(type='mmmcl.CifarResNet', depth=20)),
]


def fake_export(member: dict, path: Path) -> dict:
    """Save a freshly built member backbone the way an mmmcl export holds
    it (``state_dict`` without prefix, ``meta``); every float tensor,
    running statistics included, is random, so that none matches an
    initialisation by chance."""
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        backbone = MODELS.build(member)
    state = backbone.state_dict()
    g = torch.Generator().manual_seed(1)
    for key, value in state.items():
        if value.is_floating_point():
            noise = torch.rand(value.shape, generator=g)
            value.copy_(noise + 0.5 if 'running_var' in key else noise - .5)
    torch.save(dict(state_dict=state, meta=dict(member=0, arch=member)), path)
    return state


def with_cfg_options(config: str, path: Path) -> Config:
    """``config`` after the README's ``--cfg-options``, parsed as
    ``tools/train.py`` parses them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(['--cfg-options', OVERRIDE.format(path)])
    cfg = load(config)
    cfg.merge_from_dict(args.cfg_options)
    return cfg


@pytest.mark.parametrize('config,member', LOADS, ids=[c for c, _ in LOADS])
def test_cfg_options_load_the_export(config, member, tmp_path):
    """The README's override loads every tensor (the ShuffleNetV2 and
    MobileNetV2 of mmpretrain skip their own init only for a type named
    'Pretrained', hence mmmcl's strict init's name)."""
    from mmmcl.apis import check_export_against_config
    export = tmp_path / 'member0.pth'
    state = fake_export(member, export)
    # the README's `--check` step accepts the export for this config
    check_export_against_config(str(export), str(ROOT / config))
    cfg = with_cfg_options(config, export)
    assert cfg.model.backbone.init_cfg == dict(
        STRICT_INIT, checkpoint=str(export))
    loaded = build(cfg).backbone.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_scratch_is_an_explicit_option():
    """``--cfg-options model.backbone.init_cfg=None``: the backbone's own
    random init, as the demo's scratch runs use it."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(
        ['--cfg-options', 'model.backbone.init_cfg=None'])
    cfg = load(DET_DEMO)
    cfg.merge_from_dict(args.cfg_options)
    assert cfg.model.backbone.init_cfg is None
    assert build(cfg).backbone.is_init


@pytest.fixture(scope='module')
def canvases(tmp_path_factory) -> Path:
    """A tiny MNIST canvas set: 8 train, 4 val, 4 test canvases."""
    from mmmcl.datasets import prepare_mnist_canvas
    root = tmp_path_factory.mktemp('canvas') / 'mnist_canvas'
    return Path(prepare_mnist_canvas(str(root), num_canvases=(8, 4, 4)))


@pytest.mark.parametrize('config', [DET_DEMO, SEG_DEMO])
def test_demo_runs_with_its_data(config, canvases, tmp_path):
    """The demo config as ``tools/train.py`` runs it (the export given by
    the README's --cfg-options), on a tiny canvas set: one step, then
    validation and test with the config's metric."""
    from mmengine.runner import Runner
    export = tmp_path / 'member0.pth'
    fake_export(dict(type='mmmcl.CifarResNet', depth=20), export)
    cfg = with_cfg_options(config, export)
    root = f'{canvases}/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
    if cfg.default_scope == 'mmdet':
        for split in ('val', 'test'):
            cfg[f'{split}_evaluator'].ann_file = \
                f'{root}annotations/instances_{split}.json'
        cfg.train_cfg.update(max_epochs=1, val_interval=1)
        key = 'coco/bbox_mAP'
    else:
        cfg.train_cfg.update(max_iters=1, val_interval=1)
        key = 'mIoU'
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    metrics = runner.test()
    assert 0 <= metrics[key] <= 100
