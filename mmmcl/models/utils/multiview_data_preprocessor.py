"""mmpretrain's multi-view preprocessor with a device-side augment of each
view."""
from typing import Optional

from mmpretrain.models.utils import SelfSupDataPreprocessor

from mmmcl.registry import BATCH_AUGMENTS, MODELS


@MODELS.register_module()
class MultiViewDataPreprocessor(SelfSupDataPreprocessor):
    """:class:`mmpretrain.models.SelfSupDataPreprocessor`, then in training
    a batch augment of each view on its own draw.

    The views of a ``MultiView`` pipeline arrive as a list of (B, C, H, W)
    batches (``default_collate``); ``view_augment`` sees each normalised
    view in turn, so every view of every image gets its own crop and flip,
    as the CPU pipeline gives them. Test batches pass unaugmented.

    Args:
        view_augment (dict, optional): A batch augment that keeps the labels
            (e.g. ``dict(type='mmmcl.RandomCropFlip', ...)``), built from
            ``BATCH_AUGMENTS``. Defaults to None (the parent's behaviour).
        **kwargs: :class:`SelfSupDataPreprocessor`'s arguments.
    """

    def __init__(self, view_augment: Optional[dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.view_augment = (
            BATCH_AUGMENTS.build(view_augment) if view_augment else None)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise ``data['inputs']`` (a list of (B, C, H, W) views, or
        one batch) and, in training, augment each view."""
        data = super().forward(data, training)
        if training and self.view_augment is not None:
            inputs = data['inputs']
            views = inputs if isinstance(inputs, list) else [inputs]
            views = [self.view_augment(view)[0] for view in views]
            data['inputs'] = views if isinstance(inputs, list) else views[0]
        return data
