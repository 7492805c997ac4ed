"""Instance detection / segmentation on the MNIST canvases (mmdet)."""
from mmdet.datasets import CocoDataset

from mmmcl.registry import DATASETS
from ..mnist_canvas import DIGIT_CLASSES, DIGIT_PALETTE


@DATASETS.register_module()
class MNISTCanvasDetDataset(CocoDataset):
    """The COCO-format MNIST canvases of :func:`prepare_mnist_canvas`.

    Ten categories, ids 1..10 named ``'0'``..``'9'``; boxes and RLE masks
    cover the visible ink of each digit. Build it under ``_scope_='mmmcl'``
    (as ``configs/_base_/datasets/mnist_canvas_detection.py`` does) when the
    default scope is mmdet's.

    Args:
        **kwargs: Arguments of :class:`mmdet.datasets.CocoDataset`, e.g.
            ``data_root``, ``ann_file='annotations/instances_train.json'``,
            ``data_prefix=dict(img='images/train/')``, ``pipeline``.
    """

    METAINFO = dict(classes=DIGIT_CLASSES, palette=DIGIT_PALETTE)
