"""One integer class label per item of a dataset."""
import numpy as np


def dataset_labels(dataset, user: str) -> np.ndarray:
    """``dataset.get_gt_labels()`` checked to be one int per item.

    Args:
        dataset: Any dataset; mmpretrain's have ``get_gt_labels()``.
        user (str): Who needs the labels, for the error message.

    Returns:
        np.ndarray: Labels, (len(dataset), ).
    """
    get = getattr(dataset, 'get_gt_labels', None)
    fix = ('use a dataset whose items carry an int `gt_label` (any '
           'mmpretrain classification dataset), or give it a '
           '`get_gt_labels()` returning one int per item.')
    if get is None:
        raise ValueError(
            f'{user} needs class labels, but the dataset '
            f'{type(dataset).__name__} has no get_gt_labels(): {fix}')
    try:
        labels = get()
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(
            f'{user} could not read labels from '
            f'{type(dataset).__name__}.get_gt_labels() ({e!r}): {fix}') from e
    labels = None if labels is None else np.asarray(labels)
    if (labels is None or labels.ndim != 1 or labels.size == 0
            or not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(
            f'{user} needs one int label per item, but '
            f'{type(dataset).__name__}.get_gt_labels() gave '
            f'{"None" if labels is None else labels.dtype}'
            f'{"" if labels is None else list(labels.shape)}: {fix}')
    return labels
