"""Batches of K classes x m images, for in-batch contrastive learning."""
from typing import Iterator, List, Optional

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmmcl.registry import DATA_SAMPLERS
from ..dataset_labels import dataset_labels


@DATA_SAMPLERS.register_module()
class ClassBalancedBatchSampler(Sampler):
    """Class-balanced batches: K classes x ``num_per_class`` images each.

    Every batch holds K = ``batch_size // num_per_class`` distinct classes
    with ``num_per_class`` images of each. The in-batch contrastive losses
    need positives inside the batch: with the defaults every image has
    exactly one other image of its class (the reference's
    ``MPerClassSampler`` with m=2). For every batch the classes are drawn at
    random without replacement, then the images of each class without
    replacement; consecutive ``num_per_class`` indices share a class.
    An epoch has ``len(dataset) // (batch_size * world_size)`` batches (the
    last partial batch is dropped); images are drawn per batch, so an epoch
    need not visit every image.

    The batches depend only on ``seed`` and ``epoch`` of the wrapped sampler
    (an MMEngine ``DefaultSampler``, whose epoch ``DistSamplerSeedHook``
    sets). With W processes, every rank draws the same global batch of
    ``batch_size * W`` images and rank r yields its r-th contiguous slice of
    ``batch_size`` images, which holds whole classes; the ranks never
    overlap.

    Use it as the dataloader's ``batch_sampler``; the runner passes the
    built ``sampler`` and the dataloader's ``batch_size``::

        train_dataloader = dict(
            batch_size=64,
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_sampler=dict(type='ClassBalancedBatchSampler'),
            dataset=...)

    Args:
        sampler (Sampler): The wrapped sampler; only its ``dataset`` (or
            ``data_source``), which must have ``get_gt_labels()``, and its
            ``seed``, ``epoch``, ``rank``, ``world_size`` and ``set_epoch``
            are used, not its order. Without ``seed``, a seed shared by all
            ranks is drawn once; without ``rank``/``world_size``, they come
            from ``mmengine.dist.get_dist_info()``.
        batch_size (int): Images per batch on each rank, a multiple of
            ``num_per_class``.
        num_per_class (int): Images of each class in a batch (m).
            Defaults to 2.
        num_batches (int, optional): Batches per epoch, to keep the epoch
            (and everything scheduled by epoch) the same length whatever
            the dataset's size. Defaults to ``len(dataset) // (batch_size *
            world_size)``.
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 num_per_class: int = 2,
                 num_batches: Optional[int] = None) -> None:
        checked = [('batch_size', batch_size), ('num_per_class',
                                                num_per_class)]
        if num_batches is not None:
            checked.append(('num_batches', num_batches))
        for name, value in checked:
            if (not isinstance(value, (int, np.integer))
                    or isinstance(value, bool) or value < 1):
                raise ValueError(f'ClassBalancedBatchSampler got {name}='
                                 f'{value!r}; `{name}` must be a positive '
                                 'int.')
        if batch_size % num_per_class != 0:
            lower = batch_size - batch_size % num_per_class
            near = [m for m in (lower, lower + num_per_class) if m > 0]
            raise ValueError(
                f'ClassBalancedBatchSampler got batch_size={batch_size}, not '
                f'a multiple of num_per_class={num_per_class}: set '
                f'`batch_size` to a multiple of it (e.g. '
                f'{" or ".join(map(str, near))}) or change `num_per_class`.')
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.num_per_class = int(num_per_class)

        rank, world_size = get_dist_info()
        self.rank = int(getattr(sampler, 'rank', rank))
        self.world_size = int(getattr(sampler, 'world_size', world_size))
        seed = getattr(sampler, 'seed', None)
        self.seed = int(sync_random_seed() if seed is None else seed)
        self._epoch = 0

        # MMEngine samplers keep the dataset as `dataset`, torch's as
        # `data_source`.
        dataset = getattr(sampler, 'dataset',
                          getattr(sampler, 'data_source', None))
        labels = dataset_labels(dataset, 'ClassBalancedBatchSampler')
        classes, inverse, counts = np.unique(
            labels, return_inverse=True, return_counts=True)
        few = counts < self.num_per_class
        if few.any():
            c = int(np.flatnonzero(few)[0])
            raise ValueError(
                f'ClassBalancedBatchSampler: class {classes[c].item()} has '
                f'only {counts[c]} image(s), fewer than num_per_class='
                f'{self.num_per_class} ({int(few.sum())} such class(es)): '
                'lower `num_per_class` or give every class more images.')
        # Dataset indices grouped by class: class c owns
        # order[offsets[c]:offsets[c] + counts[c]].
        self._order = np.argsort(inverse, kind='stable')
        self._offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._counts = counts
        self.classes_per_batch = (
            self.batch_size * self.world_size // self.num_per_class)
        if self.classes_per_batch > len(classes):
            raise ValueError(
                'ClassBalancedBatchSampler: a global batch of '
                f'batch_size={self.batch_size} x world_size='
                f'{self.world_size} with num_per_class={self.num_per_class} '
                f'needs {self.classes_per_batch} distinct classes, but the '
                f'dataset has {len(classes)}: lower `batch_size` (at most '
                f'{len(classes) * self.num_per_class // self.world_size} '
                'here) or raise `num_per_class`.')
        self.num_batches = int(num_batches) if num_batches is not None \
            else len(labels) // (self.batch_size * self.world_size)

    @property
    def epoch(self) -> int:
        """The wrapped sampler's epoch (this one's if it has none)."""
        return int(getattr(self.sampler, 'epoch', self._epoch))

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch, forwarded to the wrapped sampler.

        Args:
            epoch (int): Epoch number; the batches of epoch e are fixed by
                ``seed`` and e.
        """
        self._epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def _global_batch(self, rng: np.random.Generator) -> np.ndarray:
        """``classes_per_batch * num_per_class`` indices, class-grouped."""
        chosen = rng.choice(
            len(self._counts), size=self.classes_per_batch, replace=False)
        n = self._counts[chosen]
        # Draw num_per_class distinct positions per class: the j-th draw is a
        # rank among the n - j positions left, mapped past the positions
        # already taken (visited in increasing order).
        pos = np.empty((len(chosen), self.num_per_class), dtype=np.int64)
        for j in range(self.num_per_class):
            r = (rng.random(len(chosen)) * (n - j)).astype(np.int64)
            for taken in np.sort(pos[:, :j], axis=1).T:
                r += r >= taken
            pos[:, j] = r
        return self._order[self._offsets[chosen][:, None] + pos].reshape(-1)

    def __iter__(self) -> Iterator[List[int]]:
        """Yield this rank's ``batch_size`` indices of each global batch."""
        rng = np.random.default_rng([self.seed % 2**64, self.epoch % 2**64])
        start = self.rank * self.batch_size
        for _ in range(self.num_batches):
            batch = self._global_batch(rng)
            yield batch[start:start + self.batch_size].tolist()

    def __len__(self) -> int:
        """Batches per epoch on each rank."""
        return self.num_batches

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(batch_size={self.batch_size}, '
                f'num_per_class={self.num_per_class}, '
                f'classes_per_batch={self.classes_per_batch}, '
                f'world_size={self.world_size}, '
                f'num_batches={self.num_batches})')
