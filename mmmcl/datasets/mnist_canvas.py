"""Detection / segmentation canvases composed from held-out MNIST-5k digits.

Only the ``'heldout'`` split of :func:`mnist5k_split_indices` (100 images
per digit that pretraining never sees) is used. Per digit it is cut into
fixed, disjoint pools of 70 train, 15 val and 15 test images, so a test
canvas never shows a digit image that a training canvas shows.

Layout under ``root`` (ids and file names start at 1)::

    images/{train,val,test}/NNNNN.png      grey canvases, 1 channel uint8
    seg_maps/{train,val,test}/NNNNN.png    0 background, d + 1 for digit d
    annotations/instances_{train,val,test}.json
    manifest.json                          parameters, counts, file sizes

The canvases are single-channel PNGs; ``LoadImageFromFile`` (colour mode,
its default) reads them as 3 identical channels, like :class:`MNIST5k`.
"""
import inspect
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from mmmcl.utils.progress import Progress
from mmmcl.version import __version__
from .mnist5k import load_mnist5k, mnist5k_split_indices

__all__ = ['mnist_canvas_pool', 'prepare_mnist_canvas']

DIGIT_CLASSES = tuple(str(d) for d in range(10))
# RGB, one colour per digit (matplotlib's tab10).
DIGIT_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
                 (148, 103, 189), (140, 86, 75), (227, 119, 194),
                 (127, 127, 127), (188, 189, 34), (23, 190, 207)]
SPLITS = ('train', 'val', 'test')
# Per digit, [start, stop) of each split's pool within the 100 held-out
# images (already in mnist5k's fixed permuted order).
_POOLS: Dict[str, Tuple[int, int]] = {
    'train': (0, 70),
    'val': (70, 85),
    'test': (85, 100)
}
# Bump when the same parameters would give different files.
_FORMAT_VERSION = 1
MANIFEST_FILE = 'manifest.json'
Box = Tuple[int, int, int, int]  # x1, y1, x2, y2; ends exclusive
_MIN_DIGIT_SIZE = 8
_DIGIT_TRIES = 100  # random draws to place one digit on a canvas
_CANVAS_TRIES = 20  # fresh starts of a canvas before giving up
_FIX_DAMAGED = ('Delete it, or regenerate it with `prepare_mnist_canvas(..., '
                'force=True)` (`tools/dataset_converters/make_mnist_canvas.py'
                ' --force`).')


def mnist_canvas_pool(split: str) -> np.ndarray:
    """MNIST-5k indices of the held-out digits a split's canvases draw from.

    Args:
        split (str): ``'train'``, ``'val'`` or ``'test'``.

    Returns:
        np.ndarray: ``(10, n)`` int64, row d holds the n images of digit d
        (70 for train, 15 for val and test).
    """
    if split not in _POOLS:
        raise ValueError(f'mnist_canvas_pool got split={split!r}; valid '
                         f'values of `split` are {SPLITS}.')
    start, stop = _POOLS[split]
    return mnist5k_split_indices('heldout').reshape(10, -1)[:, start:stop]


def _int_pair(name: str, value, low: int) -> List[int]:
    """Check a ``(min, max)`` pair of ints with ``low <= min <= max``."""
    ok = (
        isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            for v in value))
    if not ok:
        raise ValueError(f'`{name}` must be a pair of ints (min, max), got '
                         f'{value!r}.')
    lo, hi = int(value[0]), int(value[1])
    if lo > hi:
        raise ValueError(f'`{name}`={value!r} has min {lo} > max {hi}: '
                         'pass (min, max) with min <= max.')
    if lo < low:
        raise ValueError(f'`{name}`={value!r} has min {lo} < {low}: raise '
                         f'{name}[0] to at least {low}.')
    return [lo, hi]


def _check_params(canvas_size: int = 96,
                  num_digits: Sequence[int] = (2, 5),
                  digit_size: Sequence[int] = (20, 40),
                  max_iou: float = 0.3,
                  num_canvases: Sequence[int] = (400, 100, 100),
                  ink_threshold: int = 128,
                  min_visible: float = 0.5,
                  seed: int = 0) -> dict:
    """Check the generation parameters; return them as a JSON-ready dict.

    See :func:`prepare_mnist_canvas` for their meaning.
    """

    def is_int(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(canvas_size) or canvas_size < _MIN_DIGIT_SIZE:
        raise ValueError(f'`canvas_size` must be an int >= {_MIN_DIGIT_SIZE} '
                         f'(side in pixels), got {canvas_size!r}.')
    digit_size = _int_pair('digit_size', digit_size, _MIN_DIGIT_SIZE)
    if digit_size[1] > canvas_size:
        raise ValueError(
            f'`digit_size` max {digit_size[1]} is larger than `canvas_size` '
            f'{canvas_size}: lower digit_size[1] or raise canvas_size.')
    num_digits = _int_pair('num_digits', num_digits, 1)
    if num_digits[1] * digit_size[0]**2 > canvas_size**2:
        raise ValueError(
            f'`num_digits` max {num_digits[1]} digits of at least '
            f'{digit_size[0]} px do not fit on a {canvas_size} px canvas: '
            'lower num_digits[1] or digit_size[0], or raise canvas_size.')
    if not (isinstance(max_iou, (int, float)) and 0 <= max_iou <= 1):
        raise ValueError(f'`max_iou` must be a number in [0, 1], got '
                         f'{max_iou!r}.')
    one_per_split = (
        isinstance(num_canvases, (list, tuple))
        and len(num_canvases) == len(SPLITS))
    if not (one_per_split and all(is_int(n) and n > 0 for n in num_canvases)):
        raise ValueError('`num_canvases` must be 3 positive ints (train, '
                         f'val, test), got {num_canvases!r}.')
    if not (is_int(ink_threshold) and 1 <= ink_threshold <= 255):
        raise ValueError('`ink_threshold` must be an int in 1..255, got '
                         f'{ink_threshold!r}.')
    if not (isinstance(min_visible, (int, float)) and 0 < min_visible <= 1):
        raise ValueError('`min_visible` must be a number in (0, 1], got '
                         f'{min_visible!r}.')
    if not (is_int(seed) and seed >= 0):
        raise ValueError(f'`seed` must be an int >= 0, got {seed!r}.')
    return dict(
        canvas_size=int(canvas_size),
        num_digits=num_digits,
        digit_size=digit_size,
        max_iou=float(max_iou),
        num_canvases=[int(n) for n in num_canvases],
        ink_threshold=int(ink_threshold),
        min_visible=float(min_visible),
        seed=int(seed))


def _box_iou(a: Box, b: Box) -> float:
    """IoU of two boxes ``(x1, y1, x2, y2)``, ends exclusive."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.
    inter = w * h
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter)


def _draw_digit(rng: np.random.Generator, pool: np.ndarray, images: np.ndarray,
                params: dict, boxes: List[Box]) -> Optional[dict]:
    """Draw a digit, its size and position until its ink box overlaps no
    placed box by more than ``max_iou``; None after ``_DIGIT_TRIES``."""
    size, thr = params['canvas_size'], params['ink_threshold']
    for _ in range(_DIGIT_TRIES):
        label = int(rng.integers(10))
        source = int(pool[label, rng.integers(pool.shape[1])])
        min_side, max_side = params['digit_size']
        side = int(rng.integers(min_side, max_side + 1))
        x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        patch = cv2.resize(
            images[source], (side, side), interpolation=cv2.INTER_LINEAR)
        ink = patch >= thr
        if not ink.any():
            continue
        rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
        box = (x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1)
        if all(_box_iou(box, b) <= params['max_iou'] for b in boxes):
            return dict(
                label=label,
                source=source,
                x=x,
                y=y,
                patch=patch,
                box=box,
                ink_pixels=int(ink.sum()))
    return None


def _paste(placed: List[dict], size: int,
           thr: int) -> Tuple[np.ndarray, np.ndarray]:
    """Paste digits bottom to top; a digit's ink hides what lies below it.

    Returns:
        tuple: The canvas ``(H, W)`` uint8 and the owner map ``(H, W)``
        int64: index in ``placed`` of the top digit with ink there, -1 where
        no digit has ink. Pixels without ink keep the brightest non-ink
        value below ``thr``, so ``canvas >= thr`` equals ``owner >= 0``.
    """
    canvas = np.zeros((size, size), np.uint8)
    owner = np.full((size, size), -1, np.int64)
    for k, digit in enumerate(placed):
        patch, side = digit['patch'], digit['patch'].shape[0]
        window = np.s_[digit['y']:digit['y'] + side,
                       digit['x']:digit['x'] + side]
        region, region_owner = canvas[window], owner[window]
        ink = patch >= thr
        faint = ~ink & (region_owner < 0)
        region[faint] = np.maximum(region[faint], patch[faint])
        region[ink] = patch[ink]
        region_owner[ink] = k
    return canvas, owner


def _compose(rng: np.random.Generator, pool: np.ndarray, images: np.ndarray,
             params: dict) -> Tuple[np.ndarray, np.ndarray, List[dict], int]:
    """One canvas: its image, owner map, kept digits and dropped count."""
    size = params['canvas_size']
    lo, hi = params['num_digits']
    num = int(rng.integers(lo, hi + 1))
    for _ in range(_CANVAS_TRIES):
        placed = []
        while len(placed) < num:
            digit = _draw_digit(rng, pool, images, params,
                                [d['box'] for d in placed])
            if digit is None:
                break
            placed.append(digit)
        if len(placed) == num:
            break
    else:
        raise ValueError(
            f'Could not place {num} digits of {params["digit_size"]} px with '
            f'box IoU <= {params["max_iou"]} on a {size} px canvas: lower '
            '`num_digits` or `digit_size`, or raise `max_iou` or '
            '`canvas_size`.')
    # Drop the digits whose visible ink is below `min_visible` of their own
    # ink and paste again (dropping only uncovers the others).
    num_dropped = 0
    while True:
        canvas, owner = _paste(placed, size, params['ink_threshold'])
        visible = np.bincount(owner[owner >= 0], minlength=len(placed))
        keep = [
            visible[k] >= params['min_visible'] * d['ink_pixels']
            for k, d in enumerate(placed)
        ]
        if all(keep):
            return canvas, owner, placed, num_dropped
        num_dropped += keep.count(False)
        placed = [d for d, ok in zip(placed, keep) if ok]


def _annotation(mask: np.ndarray, digit: dict, ann_id: int,
                img_id: int) -> dict:
    """COCO annotation of one visible mask ``(H, W)`` bool."""
    # A detection-only dependency: importing mmmcl.datasets (every cohort
    # run does) must not need it.
    from pycocotools import mask as mask_utils
    side = digit['patch'].shape[0]
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(
        id=ann_id,
        image_id=img_id,
        category_id=digit['label'] + 1,
        bbox=[
            int(cols[0]),
            int(rows[0]),
            int(cols[-1] - cols[0] + 1),
            int(rows[-1] - rows[0] + 1)
        ],
        area=int(mask.sum()),
        iscrowd=0,
        segmentation=dict(size=rle['size'], counts=rle['counts'].decode()),
        mnist5k_index=digit['source'],
        digit_box=[digit['x'], digit['y'], side, side])


def _write(root: str, path: str, data: bytes, files: Dict[str, int]) -> None:
    """Write ``data`` to ``root/path``; record its size in ``files``."""
    with open(osp.join(root, path), 'wb') as f:
        f.write(data)
    files[path] = len(data)


def _png(img: np.ndarray) -> bytes:
    """Encode a ``(H, W)`` uint8 array as a grey PNG (deterministic)."""
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f'OpenCV could not encode a {img.shape} PNG.')
    return buf.tobytes()


def _write_split(root: str, split: str, params: dict, files: Dict[str, int],
                 progress: Optional[Progress]) -> dict:
    """Write one split's images, seg maps and COCO json; return counts."""
    images, _ = load_mnist5k()
    pool = mnist_canvas_pool(split)
    rng = np.random.default_rng([params['seed'], SPLITS.index(split)])
    for folder in ('images', 'seg_maps'):
        os.makedirs(osp.join(root, folder, split))
    image_infos, annotations, num_dropped = [], [], 0
    for img_id in range(1, params['num_canvases'][SPLITS.index(split)] + 1):
        canvas, owner, placed, dropped = _compose(rng, pool, images, params)
        num_dropped += dropped
        seg_map = np.zeros_like(canvas)
        for k, digit in enumerate(placed):
            mask = owner == k
            seg_map[mask] = digit['label'] + 1
            ann_id = len(annotations) + 1
            annotations.append(_annotation(mask, digit, ann_id, img_id))
        name = f'{img_id:05d}.png'
        _write(root, f'images/{split}/{name}', _png(canvas), files)
        _write(root, f'seg_maps/{split}/{name}', _png(seg_map), files)
        image_infos.append(
            dict(
                id=img_id,
                file_name=name,
                height=canvas.shape[0],
                width=canvas.shape[1]))
        if progress is not None:
            progress.update()
    coco = dict(
        info=dict(
            description=f'MNIST canvas {split} (mmmcl {__version__})',
            seed=params['seed']),
        licenses=[],
        images=image_infos,
        annotations=annotations,
        categories=[
            dict(id=d + 1, name=name, supercategory='digit')
            for d, name in enumerate(DIGIT_CLASSES)
        ])
    _write(root, f'annotations/instances_{split}.json',
           json.dumps(coco).encode(), files)
    return dict(
        images=len(image_infos),
        instances=len(annotations),
        dropped_instances=num_dropped)


def _generate(root: str, params: dict, progress: bool) -> None:
    """Write the whole data set into the new, empty directory ``root``."""
    os.makedirs(osp.join(root, 'annotations'))
    # a live bar on a terminal, a line every 10 % in a log (make demo > log)
    bar = Progress(sum(params['num_canvases']), 'writing MNIST canvases') \
        if progress else None
    files: Dict[str, int] = {}
    counts = {
        split: _write_split(root, split, params, files, bar)
        for split in SPLITS
    }
    if bar is not None:
        bar.close()
    manifest = dict(
        format_version=_FORMAT_VERSION,
        mmmcl_version=__version__,
        params=params,
        pools=_POOLS,
        counts=counts,
        files=files)
    with open(osp.join(root, MANIFEST_FILE), 'w') as f:
        json.dump(manifest, f, indent=1)


def _load_manifest(root: str) -> dict:
    """The parsed manifest of ``root``; RuntimeError if it is damaged."""
    path = osp.join(root, MANIFEST_FILE)
    try:
        with open(path) as f:
            manifest = json.load(f)
        if not (isinstance(manifest.get('params'), dict)
                and isinstance(manifest.get('files'), dict)):
            raise ValueError('no `params` or `files`')
    except (ValueError, AttributeError) as e:
        raise RuntimeError(f'The MNIST canvas manifest {path} is damaged '
                           f'({e}). {_FIX_DAMAGED}') from e
    return manifest


def _check_files(root: str, manifest: dict) -> None:
    """RuntimeError naming the first file listed in the manifest that is
    missing or has another size."""
    files = manifest['files']
    bad = [
        rel for rel, size in files.items()
        if not osp.isfile(osp.join(root, rel))
        or osp.getsize(osp.join(root, rel)) != size
    ]
    if bad:
        raise RuntimeError(
            f'The MNIST canvas data in {root} is incomplete: '
            f'{osp.join(root, bad[0])} is missing or damaged ({len(bad)} of '
            f'the {len(files)} files listed in {MANIFEST_FILE}). '
            f'{_FIX_DAMAGED}')


def prepare_mnist_canvas(root: str,
                         force: bool = False,
                         progress: bool = False,
                         **params) -> str:
    """Write the MNIST canvas data set once; reuse it while it matches.

    Each canvas holds ``num_digits`` held-out digits, each resized to a side
    in ``digit_size`` and pasted at a random position fully inside the
    canvas, its ink box overlapping earlier ones by an IoU <= ``max_iou``.
    Pixels >= ``ink_threshold`` are ink: a later digit's ink hides what lies
    below. An instance is the visible ink of one digit: its mask, its tight
    ``bbox`` (xywh), ``area`` = mask pixels, category = digit + 1,
    ``mnist5k_index`` = source image and ``digit_box`` = where the resized
    digit was pasted (xywh); a canvas lists them bottom to top. A digit
    whose visible ink is below ``min_visible`` of its own ink is removed
    from the canvas and the rest is pasted again, so a canvas may hold fewer
    than ``num_digits[0]`` instances (the manifest counts the dropped ones)
    but every ink pixel is annotated.

    ``root`` is reused when its manifest has the same parameters (and
    format), replaced when they differ. A new set is built in a temporary
    directory next to ``root`` and then renamed into place.

    Args:
        root (str): The data set directory.
        force (bool): Regenerate even if ``root`` holds matching or damaged
            data. Defaults to False.
        progress (bool): Show progress while writing: a live bar on a
            terminal, a line every 10 % otherwise (a redirected log stays
            readable). Defaults to False.
        **params: Generation parameters, recorded in the manifest:
            ``canvas_size`` (int, square side, default 96), ``num_digits``
            ((min, max) digits pasted per canvas, default (2, 5)),
            ``digit_size`` ((min, max) side of a pasted 28x28 digit,
            default (20, 40)), ``max_iou`` (default 0.3), ``num_canvases``
            ((train, val, test), default (400, 100, 100)),
            ``ink_threshold`` (default 128), ``min_visible`` (default 0.5)
            and ``seed`` (default 0).

    Returns:
        str: ``root``, normalised.

    Raises:
        ValueError: A parameter is invalid (named, with the fix).
        RuntimeError: ``root`` holds damaged data, or is not a directory
            written by this function.
    """
    unknown = set(params) - set(inspect.signature(_check_params).parameters)
    if unknown:
        raise TypeError(
            f'prepare_mnist_canvas got unknown parameters {sorted(unknown)}; '
            f'valid: {list(inspect.signature(_check_params).parameters)}.')
    params = _check_params(**params)
    root = osp.normpath(root)
    if osp.exists(root) and not osp.isdir(root):
        raise RuntimeError(f'{root} is a file; pass a directory for the '
                           'MNIST canvas data.')
    if osp.isdir(root) and os.listdir(root):
        if not osp.isfile(osp.join(root, MANIFEST_FILE)):
            raise RuntimeError(
                f'{root} is not empty and has no {MANIFEST_FILE}, so it was '
                'not written by prepare_mnist_canvas; it is left alone: '
                'pass an empty or new directory.')
        if not force:
            manifest = _load_manifest(root)
            if (manifest.get('format_version') == _FORMAT_VERSION
                    and manifest['params'] == params):
                _check_files(root, manifest)
                print_log(f'Reusing the MNIST canvas data in {root}.',
                          'current')
                return root
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(root)}.tmp-', dir=parent)
    try:
        os.chmod(tmp, 0o755)
        _generate(tmp, params, progress)
        if osp.exists(root):
            old = tempfile.mkdtemp(
                prefix=f'.{osp.basename(root)}.old-', dir=parent)
            os.rename(root, osp.join(old, 'data'))
            os.rename(tmp, root)
            shutil.rmtree(old)
        else:
            os.rename(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_log(f'Wrote the MNIST canvas data to {root}.', 'current')
    return root
