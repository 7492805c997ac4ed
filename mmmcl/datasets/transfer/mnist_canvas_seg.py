"""Semantic segmentation on the MNIST canvases (mmseg)."""
from mmseg.datasets import BaseSegDataset

from mmmcl.registry import DATASETS
from ..mnist_canvas import DIGIT_CLASSES, DIGIT_PALETTE


@DATASETS.register_module()
class MNISTCanvasSegDataset(BaseSegDataset):
    """The semantic maps of :func:`prepare_mnist_canvas`.

    Eleven classes: ``'background'`` (value 0) and the digits ``'0'``..
    ``'9'`` (value d + 1); images and maps are ``NNNNN.png`` in
    ``images/{split}`` and ``seg_maps/{split}``.

    Args:
        img_suffix (str): Suffix of the images. Defaults to '.png'.
        seg_map_suffix (str): Suffix of the maps. Defaults to '.png'.
        reduce_zero_label (bool): Must stay False: 0 is the background
            class, not an ignored label (True raises ValueError).
            Defaults to False.
        **kwargs: Other arguments of :class:`mmseg.datasets.BaseSegDataset`,
            e.g. ``data_root``, ``data_prefix=dict(img_path='images/train',
            seg_map_path='seg_maps/train')``, ``pipeline``.
    """

    METAINFO = dict(
        classes=('background', ) + DIGIT_CLASSES,
        palette=[[0, 0, 0]] + [list(rgb) for rgb in DIGIT_PALETTE])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        if reduce_zero_label:
            raise ValueError(
                'MNISTCanvasSegDataset got reduce_zero_label=True, but 0 is '
                "its 'background' class: drop `reduce_zero_label`.")
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
