"""Datasets of the transfer configs, built on mmdet's and mmseg's.

Not imported by ``import mmmcl`` or ``mmmcl.datasets`` (importing mmdet and
mmseg costs seconds and needs ``mmcv.ops``): the transfer dataset bases
(``configs/_base_/datasets/mnist_canvas_*.py``) import this package with
``custom_imports``, which ``Config.fromfile`` runs for every tool (mmmcl's,
mmdet's and mmseg's ``tools/train.py``).
"""
from .mnist_canvas_det import MNISTCanvasDetDataset
from .mnist_canvas_seg import MNISTCanvasSegDataset

__all__ = ['MNISTCanvasDetDataset', 'MNISTCanvasSegDataset']
