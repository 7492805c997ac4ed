"""Per-sample memory-bank rows for the bank contrastive loss."""
from typing import Optional, Union

import numpy as np
import torch
from mmengine.dist import sync_random_seed

from mmmcl.registry import DATASETS
from .dataset_labels import dataset_labels


@DATASETS.register_module()
class ContrastIndexDataset:
    """Adds ``contrast_idx = [self, positive, K negatives]`` to each item.

    For item i of class c: i itself, one other item of class c, and K items
    of other classes drawn uniformly with replacement, as the memory-bank
    recipe of (L-)MCL needs (``MemoryBankContrastLoss``). The draws depend
    only on ``seed``, the epoch and i, so they are the same in every worker
    and rank and after a resume; the epoch is set by ``ContrastIndexHook``
    before each epoch and lives in shared memory, so persistent dataloader
    workers see it too. Under an iteration-based loop the epoch stays 0.

    The packed sample gets ``data_samples.contrast_idx``, a long tensor
    (K + 2, ); any pipeline works, nothing in it needs to change.

    Args:
        dataset (dict | Dataset): The wrapped dataset (config or object),
            with ``get_gt_labels()`` like every mmpretrain dataset.
        num_negatives (int): K. Defaults to 8192.
        seed (int, optional): Seed of the draws. Defaults to None: one
            shared by all ranks is drawn from the global RNG (so it follows
            ``randomness.seed``).
    """

    def __init__(self,
                 dataset: Union[dict, object],
                 num_negatives: int = 8192,
                 seed: Optional[int] = None) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(
            dataset, dict) else dataset
        if (not isinstance(num_negatives, (int, np.integer))
                or num_negatives < 1):
            raise ValueError('ContrastIndexDataset got num_negatives='
                             f'{num_negatives!r}; it must be an int >= 1.')
        self.num_negatives = int(num_negatives)
        self.seed = int(sync_random_seed() if seed is None else seed)
        labels = dataset_labels(self.dataset, 'ContrastIndexDataset')
        classes, inverse, counts = np.unique(
            labels, return_inverse=True, return_counts=True)
        if counts.min() < 2:
            c = int(np.argmin(counts))
            raise ValueError(
                f'ContrastIndexDataset: class {classes[c].item()} has a '
                'single item, so it has no positive: every class needs at '
                'least 2 items.')
        available = len(labels) - counts.max()
        if self.num_negatives > available:
            raise ValueError(
                f'ContrastIndexDataset got num_negatives={num_negatives}, '
                f'but class {classes[np.argmax(counts)].item()} has only '
                f'{available} items of other classes: lower '
                f'`num_negatives` to at most {available}.')
        # Items grouped by class: class c owns order[start[c]:start[c+1]].
        self._order = np.argsort(inverse, kind='stable')
        self._start = np.concatenate([[0], np.cumsum(counts)])
        self._class_of = inverse
        self._rank_in_class = np.empty(len(labels), dtype=np.int64)
        self._rank_in_class[self._order] = np.arange(len(labels)) - \
            self._start[inverse[self._order]]
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def metainfo(self) -> dict:
        return self.dataset.metainfo

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Use the draws of ``epoch`` from now on (in every worker)."""
        self._epoch.fill_(epoch)

    def get_gt_labels(self) -> np.ndarray:
        return self.dataset.get_gt_labels()

    def contrast_idx(self, index: int) -> np.ndarray:
        """``[index, positive, K negatives]`` of ``index``, (K + 2, )."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        c = self._class_of[index]
        start, stop = self._start[c], self._start[c + 1]
        # positive: any other item of the class (skip the own rank)
        pos = rng.integers(stop - start - 1)
        pos += pos >= self._rank_in_class[index]
        # negatives: uniform over the items outside [start, stop)
        neg = rng.integers(len(self._order) - (stop - start),
                           size=self.num_negatives)
        neg += (neg >= start) * (stop - start)
        rows = np.concatenate([[start + pos], neg])
        return np.concatenate([[index], self._order[rows]])

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        item['data_samples'].set_field(
            torch.from_numpy(self.contrast_idx(index)),
            'contrast_idx',
            field_type='data')
        return item

    def __len__(self) -> int:
        return len(self.dataset)
