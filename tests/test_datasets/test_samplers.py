from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmmcl.datasets import ClassBalancedBatchSampler
from mmmcl.registry import DATA_SAMPLERS


class LabelledSet:
    """Made-up labels, the only thing the batch sampler reads."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def __len__(self):
        return len(self.labels)

    def get_gt_labels(self):
        return self.labels


class FakeSampler:
    """The attributes of mmengine's DefaultSampler the batch sampler uses."""

    def __init__(self, dataset, seed=0, rank=0, world_size=1):
        self.dataset = dataset
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch


def shuffled_labels(num_classes=20, per_class=7, seed=0):
    labels = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(labels)


def make(labels=None, batch_size=8, num_per_class=2, **kwargs):
    labels = shuffled_labels() if labels is None else labels
    return ClassBalancedBatchSampler(
        FakeSampler(LabelledSet(labels), **kwargs), batch_size, num_per_class)


@pytest.mark.parametrize('batch_size,num_per_class', [(8, 2), (12, 3),
                                                      (5, 1)])
def test_every_batch_is_k_classes_times_m(batch_size, num_per_class):
    labels = shuffled_labels()
    batches = list(make(labels, batch_size, num_per_class))
    assert len(batches) == len(labels) // batch_size
    for batch in batches:
        assert len(batch) == batch_size
        assert len(set(batch)) == batch_size
        assert all(isinstance(i, int) for i in batch)
        counts = Counter(labels[batch].tolist())
        assert len(counts) == batch_size // num_per_class
        assert set(counts.values()) == {num_per_class}
        # each class's images are consecutive
        grouped = labels[batch].reshape(-1, num_per_class)
        assert (grouped == grouped[:, :1]).all()


def test_len_drops_the_last_partial_batch():
    labels = shuffled_labels(20, 7)  # 140 images
    assert len(make(labels, batch_size=8)) == 17
    assert len(list(make(labels, batch_size=8))) == 17
    assert len(make(labels, batch_size=8, rank=1, world_size=2)) == 8


def test_num_batches_fixes_the_epoch_length():
    """An epoch of num_batches balanced batches whatever the dataset size;
    the first batches are those of the default length."""
    labels = shuffled_labels(per_class=3)  # 60 images: 7 batches of 8
    fixed = ClassBalancedBatchSampler(
        FakeSampler(LabelledSet(labels)), 8, 2, num_batches=20)
    batches = list(fixed)
    assert len(fixed) == len(batches) == 20
    assert batches[:7] == list(make(labels))
    for b in batches:
        assert sorted(Counter(labels[b]).values()) == [2] * 4
    with pytest.raises(ValueError, match='num_batches=0'):
        ClassBalancedBatchSampler(
            FakeSampler(LabelledSet(labels)), 8, 2, num_batches=0)


def test_draws_every_image_without_bias():
    labels = np.repeat(np.arange(10), 3)
    sampler = make(labels, batch_size=4)
    hits = Counter()
    for epoch in range(400):
        sampler.set_epoch(epoch)
        for batch in sampler:
            hits.update(batch)
    # 400 x 7 batches; an image is drawn with probability 2/10 * 2/3, so
    # about 373 +- 18 times.
    assert set(hits) == set(range(30))
    assert 300 < min(hits.values()) and max(hits.values()) < 450


def test_same_seed_and_epoch_give_the_same_batches():
    a, b = make(seed=3), make(seed=3)
    assert list(a) == list(b)
    assert list(a) == list(a)
    assert list(make(seed=4)) != list(a)


def test_epoch_changes_the_batches_and_is_forwarded():
    sampler = make(seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    assert sampler.sampler.epoch == 1
    second = list(sampler)
    assert second != first
    # DistSamplerSeedHook sets the epoch on the wrapped sampler only
    other = make(seed=3)
    other.sampler.set_epoch(1)
    assert other.epoch == 1
    assert list(other) == second


def test_works_with_a_plain_torch_sampler():
    data = LabelledSet(shuffled_labels())
    sampler = ClassBalancedBatchSampler(
        torch.utils.data.SequentialSampler(data), batch_size=8)
    first = list(sampler)
    assert len(first) == 17
    assert list(sampler) == first  # the seed is drawn once
    sampler.set_epoch(1)
    assert sampler.epoch == 1
    assert list(sampler) != first


def default_sampler(monkeypatch, dataset, rank, world_size, seed=11):
    monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info',
                        lambda: (rank, world_size))
    return DefaultSampler(dataset, shuffle=True, seed=seed)


def test_ranks_take_disjoint_slices_of_the_global_batch(monkeypatch):
    labels = shuffled_labels(30, 6)  # 180 images
    dataset = LabelledSet(labels)
    batch_size = 8
    whole = ClassBalancedBatchSampler(
        default_sampler(monkeypatch, dataset, 0, 1), 2 * batch_size)
    shards = [
        ClassBalancedBatchSampler(
            default_sampler(monkeypatch, dataset, rank, 2), batch_size)
        for rank in range(2)
    ]
    assert [s.rank for s in shards] == [0, 1]
    for epoch in (0, 5):
        for s in [whole] + shards:
            s.set_epoch(epoch)
        global_batches = list(whole)
        rank0, rank1 = list(shards[0]), list(shards[1])
        assert len(rank0) == len(rank1) == len(global_batches) == 180 // 16
        for g, b0, b1 in zip(global_batches, rank0, rank1):
            assert not set(b0) & set(b1)
            assert b0 + b1 == g
            for shard in (b0, b1):
                counts = Counter(labels[shard].tolist())
                assert len(counts) == batch_size // 2
                assert set(counts.values()) == {2}


def test_builds_from_the_registry_with_runner_defaults():
    sampler = FakeSampler(LabelledSet(shuffled_labels()))
    built = DATA_SAMPLERS.build(
        dict(type='ClassBalancedBatchSampler', num_per_class=2),
        default_args=dict(sampler=sampler, batch_size=8))
    assert isinstance(built, ClassBalancedBatchSampler)
    assert built.sampler is sampler and built.classes_per_batch == 4


def test_runner_builds_a_dataloader_of_balanced_mnist_batches():
    cfg = dict(
        batch_size=10,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=dict(type='ClassBalancedBatchSampler'),
        dataset=dict(
            type='MNIST5k',
            split='train',
            num_per_class=20,
            pipeline=[
                dict(type='mmcv.Pad', size=(32, 32)),
                dict(type='PackInputs')
            ]))
    with DefaultScope.overwrite_default_scope('mmmcl'):
        loader = Runner.build_dataloader(cfg, seed=0)
    assert isinstance(loader.batch_sampler, ClassBalancedBatchSampler)
    assert len(loader) == 200 // 10
    batch = next(iter(loader))
    assert [tuple(x.shape) for x in batch['inputs']] == [(3, 32, 32)] * 10
    labels = [int(s.gt_label) for s in batch['data_samples']]
    assert sorted(Counter(labels).values()) == [2] * 5
    # the hook's path: dataloader.batch_sampler.sampler.set_epoch
    first = list(loader.batch_sampler)
    loader.batch_sampler.sampler.set_epoch(1)
    assert list(loader.batch_sampler) != first

    # by the scoped names, from a config whose default scope is mmpretrain
    # (mmengine's root registries only see their direct children, so
    # 'mmmcl.X' needs the mmpretrain scope or the mmmcl one)
    cfg['batch_sampler'] = dict(type='mmmcl.ClassBalancedBatchSampler')
    cfg['dataset']['type'] = 'mmmcl.MNIST5k'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        loader = Runner.build_dataloader(cfg, seed=0)
    assert isinstance(loader.batch_sampler, ClassBalancedBatchSampler)
    assert list(loader.batch_sampler) == first


def test_batch_size_not_a_multiple_of_num_per_class():
    with pytest.raises(ValueError, match=r'batch_size=7.*num_per_class=2'):
        make(batch_size=7)
    with pytest.raises(ValueError, match='batch_size'):
        make(batch_size=0)
    with pytest.raises(ValueError, match='num_per_class'):
        make(num_per_class=0)


def test_more_classes_per_batch_than_the_dataset_has():
    labels = np.repeat(np.arange(5), 4)
    make(labels, batch_size=10)  # exactly 5 classes: fine
    with pytest.raises(ValueError, match='needs 6 distinct classes.*has 5'):
        make(labels, batch_size=12)
    with pytest.raises(ValueError, match='world_size=2'):
        make(labels, batch_size=6, rank=1, world_size=2)


def test_class_with_fewer_than_num_per_class_images():
    labels = np.concatenate([np.repeat(np.arange(5), 4), [7]])
    with pytest.raises(ValueError, match='class 7 has only 1 image'):
        make(labels, batch_size=4)
    make(labels, batch_size=4, num_per_class=1)


class NoLabels:

    def __len__(self):
        return 4


class MissingKey(NoLabels):

    def get_gt_labels(self):
        return np.array([dict(img=0)[k] for k in ['gt_label']])


class MultiLabel(NoLabels):

    def get_gt_labels(self):
        return np.zeros((4, 3), dtype=np.int64)


class FloatLabels(NoLabels):

    def get_gt_labels(self):
        return np.zeros(4)


@pytest.mark.parametrize('dataset,match', [
    (NoLabels(), 'has no get_gt_labels'),
    (MissingKey(), 'could not read labels'),
    (MultiLabel(), 'one int label per item'),
    (FloatLabels(), 'one int label per item'),
])
def test_dataset_without_labels(dataset, match):
    with pytest.raises(ValueError, match=match):
        ClassBalancedBatchSampler(FakeSampler(dataset), batch_size=2)
