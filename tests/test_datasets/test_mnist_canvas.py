"""MNIST canvases: geometry, formats, pools, determinism and reuse."""
import functools
import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmmcl.datasets import (mnist_canvas, mnist_canvas_pool,
                            prepare_mnist_canvas)
from mmmcl.datasets.transfer import (MNISTCanvasDetDataset,
                                     MNISTCanvasSegDataset)
from mmmcl.datasets.mnist5k import load_mnist5k, mnist5k_split_indices

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / 'configs' / '_base_' / 'datasets'
SPLITS = ('train', 'val', 'test')
TINY = dict(num_canvases=(3, 2, 2))
# Crowded, so that digits occlude each other and some are dropped.
CROWDED = dict(
    num_digits=(4, 6),
    digit_size=(24, 40),
    max_iou=0.6,
    min_visible=0.7,
    num_canvases=(8, 6, 6),
    seed=3)
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


@pytest.fixture(scope='module')
def crowded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('canvas') / 'mnist_canvas'
    return Path(prepare_mnist_canvas(str(root), **CROWDED))


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _coco_json(root: Path, split: str) -> dict:
    with open(root / 'annotations' / f'instances_{split}.json') as f:
        return json.load(f)


def _tree(root: Path) -> dict:
    """Relative path -> (sha256, mtime_ns) of every file under root."""
    return {
        str(p.relative_to(root)):
        (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob('*')) if p.is_file()
    }


def _boxes_intersect(a: list, b: list) -> bool:
    """Whether two xywh boxes share a pixel."""
    return (min(a[0] + a[2], b[0] + b[2]) > max(a[0], b[0])
            and min(a[1] + a[3], b[1] + b[3]) > max(a[1], b[1]))


def _hashes(root: Path) -> dict:
    return {k: v[0] for k, v in _tree(root).items()}


@pytest.mark.parametrize('split', SPLITS)
def test_boxes_masks_and_seg_maps_agree(crowded, split):
    manifest = json.loads((crowded / 'manifest.json').read_text())
    thr = manifest['params']['ink_threshold']
    coco = _coco_json(crowded, split)
    assert len(coco['images']) == CROWDED['num_canvases'][SPLITS.index(split)]
    digits, labels = load_mnist5k()
    by_image = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        by_image[ann['image_id']].append(ann)
    for info in coco['images']:
        img = _read(crowded / 'images' / split / info['file_name'])
        seg = _read(crowded / 'seg_maps' / split / info['file_name'])
        assert img.shape == seg.shape == (96, 96)
        assert img.dtype == seg.dtype == np.uint8
        anns = by_image[info['id']]
        assert 1 <= len(anns) <= CROWDED['num_digits'][1]
        masks = np.zeros((11, 96, 96), bool)  # per seg class
        cover = np.zeros((96, 96), np.int64)
        top = np.full((96, 96), -1)  # rank of the instance seen there
        hidden = []  # per instance: own ink that it does not show
        for rank, ann in enumerate(anns):
            assert ann['iscrowd'] == 0
            mask = mask_utils.decode(ann['segmentation']).astype(bool)
            rows = np.flatnonzero(mask.any(1))
            cols = np.flatnonzero(mask.any(0))
            x, y, w, h = ann['bbox']
            # the tight box of the visible mask
            assert [x, y, w, h] == [
                cols[0], rows[0], cols[-1] - cols[0] + 1,
                rows[-1] - rows[0] + 1
            ]
            assert ann['area'] == mask.sum() > 0
            assert (img[mask] >= thr).all(), 'mask pixels must be ink'
            assert labels[ann['mnist5k_index']] == ann['category_id'] - 1
            # the digit as pasted: the mask is the part of its ink on top
            dx, dy, side, _ = ann['digit_box']
            pasted = np.zeros((96, 96), np.int64)
            pasted[dy:dy + side, dx:dx + side] = cv2.resize(
                digits[ann['mnist5k_index']], (side, side),
                interpolation=cv2.INTER_LINEAR)
            ink = pasted >= thr
            assert not (mask & ~ink).any()
            assert (img[mask] == pasted[mask]).all()
            assert mask.sum() >= CROWDED['min_visible'] * ink.sum()
            hidden.append((rank, ink & ~mask))
            top[mask] = rank
            masks[ann['category_id']] |= mask
            cover += mask
        assert cover.max() == 1, 'visible masks must not overlap'
        for rank, pixels in hidden:
            # hidden ink lies under a later (higher) instance
            assert (top[pixels] > rank).all()
        for value in range(1, 11):
            assert ((seg == value) == masks[value]).all(), value
        assert ((seg == 0) == (cover == 0)).all()
        assert ((img >= thr) == (cover == 1)).all(), 'unannotated ink'


def test_crowded_set_occludes_and_drops(crowded):
    """The checks above cover occlusion: overlapping and dropped digits."""
    manifest = json.loads((crowded / 'manifest.json').read_text())
    assert sum(c['dropped_instances'] for c in manifest['counts'].values()) > 0
    overlapping = 0
    for split in SPLITS:
        raw = _coco_json(crowded, split)
        for info in raw['images']:
            boxes = [
                a['bbox'] for a in raw['annotations']
                if a['image_id'] == info['id']
            ]
            overlapping += sum(
                _boxes_intersect(a, b) for i, a in enumerate(boxes)
                for b in boxes[:i])
    assert overlapping > 0


def test_later_ink_hides_earlier_ink():
    """Two overlapping 4x4 digits: ink on top wins, faint pixels do not."""
    low = np.array([[200, 200, 200, 200]] * 4, np.uint8)
    high = np.zeros((4, 4), np.uint8)
    high[:, 0] = 250  # ink column over low's column 2
    high[:, 1] = 90  # faint column over low's column 3
    placed = [
        dict(x=0, y=0, patch=low),
        dict(x=2, y=0, patch=high),
    ]
    canvas, owner = mnist_canvas._paste(placed, 8, 128)
    assert owner[0].tolist() == [0, 0, 1, 0, -1, -1, -1, -1]
    assert canvas[0].tolist() == [200, 200, 250, 200, 0, 0, 0, 0]
    assert (owner[4:] == -1).all() and (canvas[4:] == 0).all()


def test_pycocotools_loads_with_matching_counts(crowded):
    manifest = json.loads((crowded / 'manifest.json').read_text())
    for split in SPLITS:
        raw = _coco_json(crowded, split)
        coco = COCO(str(crowded / 'annotations' / f'instances_{split}.json'))
        counts = manifest['counts'][split]
        assert len(coco.getImgIds()) == counts['images'] == len(raw['images'])
        assert len(coco.getAnnIds()) == counts['instances'] == len(
            raw['annotations'])
        for img_id in coco.getImgIds():
            expected = [
                a for a in raw['annotations'] if a['image_id'] == img_id
            ]
            assert len(coco.getAnnIds(imgIds=[img_id])) == len(expected)
        cats = coco.loadCats(coco.getCatIds())
        assert [(c['id'], c['name']) for c in cats] == [(d + 1, str(d))
                                                        for d in range(10)]


def test_coco_metric_scores_ground_truth_as_perfect(crowded):
    from mmdet.evaluation import CocoMetric
    ann_file = str(crowded / 'annotations' / 'instances_val.json')
    raw = _coco_json(crowded, 'val')
    metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'])
    metric.dataset_meta = MNISTCanvasDetDataset.METAINFO
    samples = []
    for info in raw['images']:
        anns = [a for a in raw['annotations'] if a['image_id'] == info['id']]
        boxes = torch.tensor([[x, y, x + w, y + h]
                              for x, y, w, h in (a['bbox'] for a in anns)],
                             dtype=torch.float32)
        masks = np.stack([mask_utils.decode(a['segmentation'])
                          for a in anns]).astype(bool)
        samples.append(
            dict(
                img_id=info['id'],
                ori_shape=(96, 96),
                pred_instances=dict(
                    bboxes=boxes,
                    scores=torch.ones(len(anns)),
                    labels=torch.tensor([a['category_id'] - 1 for a in anns]),
                    masks=torch.from_numpy(masks))))
    metric.process({}, samples)
    results = metric.evaluate(len(samples))
    assert results['coco/bbox_mAP'] == pytest.approx(1.0)
    assert results['coco/segm_mAP'] == pytest.approx(1.0)


def _set_data_root(cfg: Config, root: Path) -> None:
    for loader in LOADERS:
        cfg[loader].dataset.data_root = str(root)


@pytest.mark.parametrize('scope', [None, 'mmdet', 'mmmcl'])
def test_det_dataset_from_config(crowded, scope):
    from mmdet.registry import DATASETS
    if scope is not None:
        DefaultScope.get_instance(f'test-canvas-det-{scope}', scope_name=scope)
    cfg = Config.fromfile(str(CONFIGS / 'mnist_canvas_detection.py'))
    _set_data_root(cfg, crowded)
    assert cfg.img_scale == (96, 96)
    assert not any('Flip' in t['type'] for t in cfg.train_pipeline)
    for loader, split in zip(LOADERS, SPLITS):
        dataset = DATASETS.build(cfg[loader].dataset)
        assert isinstance(dataset, MNISTCanvasDetDataset)
        assert dataset.metainfo['classes'] == tuple('0123456789')
        raw = _coco_json(crowded, split)
        assert len(dataset) == len(raw['images'])
        item = dataset[0]
        info = dataset.get_data_info(0)
        grey = _read(Path(info['img_path']))
        assert item['inputs'].shape == (3, 96, 96)
        assert (item['inputs'] == torch.from_numpy(grey)).all()
        anns = [
            a for a in raw['annotations'] if a['image_id'] == info['img_id']
        ]
        gt = item['data_samples'].gt_instances
        boxes = getattr(gt.bboxes, 'tensor', gt.bboxes)
        assert boxes.tolist() == [[x, y, x + w, y + h]
                                  for x, y, w, h in (a['bbox'] for a in anns)]
        assert gt.labels.tolist() == [a['category_id'] - 1 for a in anns]
        masks = np.stack([mask_utils.decode(a['segmentation']) for a in anns])
        assert (gt.masks.to_ndarray() == masks).all()


@pytest.mark.parametrize('scope', [None, 'mmseg', 'mmmcl'])
def test_seg_dataset_from_config(crowded, scope):
    from mmseg.registry import DATASETS
    if scope is not None:
        DefaultScope.get_instance(f'test-canvas-seg-{scope}', scope_name=scope)
    cfg = Config.fromfile(str(CONFIGS / 'mnist_canvas_segmentation.py'))
    _set_data_root(cfg, crowded)
    for loader, split in zip(LOADERS, SPLITS):
        dataset = DATASETS.build(cfg[loader].dataset)
        assert isinstance(dataset, MNISTCanvasSegDataset)
        assert dataset.metainfo['classes'] == (
            'background', ) + tuple('0123456789')
        assert len(dataset.metainfo['palette']) == 11
        assert len(dataset) == CROWDED['num_canvases'][SPLITS.index(split)]
        item = dataset[0]
        info = dataset.get_data_info(0)
        assert Path(info['img_path']).name == '00001.png'
        assert (item['inputs'] == torch.from_numpy(
            _read(Path(info['img_path'])))).all()
        seg = item['data_samples'].gt_sem_seg.data
        assert (seg[0].numpy() == _read(Path(info['seg_map_path']))).all()
    with pytest.raises(ValueError, match='reduce_zero_label'):
        MNISTCanvasSegDataset(reduce_zero_label=True)


def test_digits_come_from_disjoint_heldout_pools(crowded):
    _, labels = load_mnist5k()
    heldout = set(mnist5k_split_indices('heldout').tolist())
    pretraining = set(
        np.concatenate([mnist5k_split_indices(s) for s in SPLITS]).tolist())
    pools = {}
    for split, per_digit in zip(SPLITS, (70, 15, 15)):
        pool = mnist_canvas_pool(split)
        assert pool.shape == (10, per_digit)
        assert (labels[pool] == np.arange(10)[:, None]).all()
        pools[split] = set(pool.ravel().tolist())
        used = {
            a['mnist5k_index']
            for a in _coco_json(crowded, split)['annotations']
        }
        assert used <= pools[split], split
    assert set.union(*pools.values()) <= heldout
    assert not heldout & pretraining
    assert not pools['train'] & pools['val']
    assert not pools['train'] & pools['test']
    assert not pools['val'] & pools['test']


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = Path(prepare_mnist_canvas(str(tmp_path / 'a'), **TINY))
    b = Path(prepare_mnist_canvas(str(tmp_path / 'b'), **TINY))
    c = Path(prepare_mnist_canvas(str(tmp_path / 'c'), seed=1, **TINY))
    hashes = _hashes(a)
    assert 'images/train/00003.png' in hashes
    assert 'seg_maps/test/00002.png' in hashes
    assert 'annotations/instances_val.json' in hashes
    assert _hashes(b) == hashes
    other = _hashes(c)
    assert other.keys() == hashes.keys()
    assert other['images/train/00001.png'] != hashes['images/train/00001.png']


def test_reuse_regenerate_and_damage(tmp_path):
    root = tmp_path / 'data'
    assert prepare_mnist_canvas(str(root) + '/', **TINY) == str(root)
    before = _tree(root)
    prepare_mnist_canvas(str(root), **TINY)
    assert _tree(root) == before, 'same parameters must reuse the files'

    prepare_mnist_canvas(str(root), seed=5, **TINY)
    manifest = json.loads((root / 'manifest.json').read_text())
    assert manifest['params']['seed'] == 5
    assert manifest['format_version'] >= 1 and manifest['mmmcl_version']
    assert _hashes(root) != {k: v[0] for k, v in before.items()}
    assert sorted(os.listdir(tmp_path)) == ['data'], 'temp dirs left over'

    victim = root / 'images' / 'val' / '00002.png'
    victim.unlink()
    with pytest.raises(RuntimeError, match=re.escape(str(victim))):
        prepare_mnist_canvas(str(root), seed=5, **TINY)
    assert prepare_mnist_canvas(str(root), seed=5, force=True, **TINY)
    assert victim.is_file()

    (root / 'manifest.json').write_text('{"params": ')
    with pytest.raises(RuntimeError, match='manifest.json is damaged'):
        prepare_mnist_canvas(str(root), seed=5, **TINY)


def test_refuses_a_foreign_directory(tmp_path):
    (tmp_path / 'notes.txt').write_text('mine')
    with pytest.raises(RuntimeError, match='not written by'):
        prepare_mnist_canvas(str(tmp_path), force=True, **TINY)
    assert sorted(os.listdir(tmp_path)) == ['notes.txt']


@pytest.mark.parametrize(
    'params,name',
    [
        (dict(digit_size=(20, 120)), 'digit_size'),  # larger than the canvas
        (dict(digit_size=(40, 20)), 'digit_size'),  # min > max
        (dict(digit_size=(4, 20)), 'digit_size'),
        (dict(num_digits=(3, 2)), 'num_digits'),
        (dict(num_digits=(2, 40)), 'num_digits'),  # more than fit
        (dict(num_canvases=(400, 0, 100)), 'num_canvases'),
        (dict(num_canvases=(400, 100)), 'num_canvases'),
        (dict(canvas_size=0), 'canvas_size'),
        (dict(max_iou=1.5), 'max_iou'),
        (dict(ink_threshold=0), 'ink_threshold'),
        (dict(min_visible=0), 'min_visible'),
        (dict(seed=-1), 'seed'),
    ])
def test_bad_params_name_the_parameter(tmp_path, params, name):
    with pytest.raises(ValueError, match=f'`{name}`'):
        prepare_mnist_canvas(str(tmp_path / 'data'), **params)
    assert not os.listdir(tmp_path)


def test_unplaceable_digits_name_the_parameters(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_canvas, '_DIGIT_TRIES', 1)
    with pytest.raises(ValueError, match='`num_digits`'):
        prepare_mnist_canvas(
            str(tmp_path / 'data'),
            num_digits=(16, 16),
            digit_size=(24, 24),
            max_iou=0.,
            num_canvases=(1, 1, 1))
    assert not os.listdir(tmp_path), 'the temp dir must be removed'


def test_unknown_param_is_named(tmp_path):
    with pytest.raises(TypeError, match='digit_sizes'):
        prepare_mnist_canvas(str(tmp_path / 'data'), digit_sizes=(20, 40))


def test_cli_writes_and_reports(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location(
        'make_mnist_canvas',
        REPO / 'tools' / 'dataset_converters' / 'make_mnist_canvas.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    # the CLI's own sizes take seconds; keep its flags, shrink the set
    monkeypatch.setattr(cli, 'prepare_mnist_canvas',
                        functools.partial(prepare_mnist_canvas, **TINY))
    out = tmp_path / 'canvas'
    cli.main(['--out', str(out), '--seed', '2'])
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['params']['seed'] == 2
    printed = capsys.readouterr().out
    assert str(out) in printed
    assert 'train: 3 images' in printed and 'test: 2 images' in printed
    before = _hashes(out)
    inode = (out / 'manifest.json').stat().st_ino
    cli.main(['--out', str(out), '--seed', '2', '--force'])
    assert (out / 'manifest.json').stat().st_ino != inode, 'not rewritten'
    assert _hashes(out) == before
