import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from mmmcl.datasets import ContrastIndexDataset


class Labelled:
    """A dataset of ``labels`` whose items are packed DataSamples."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)
        self.metainfo = dict(classes=[str(c) for c in set(labels)])

    def get_gt_labels(self):
        return self.labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return dict(
            inputs=torch.zeros(1),
            data_samples=DataSample().set_gt_label(int(self.labels[i])))


LABELS = [3, 1, 2, 3, 1, 1, 2, 3, 2, 1, 3, 2]  # 4 of each of 3 classes


def test_draws_self_a_positive_and_other_class_negatives():
    data = ContrastIndexDataset(Labelled(LABELS), num_negatives=8, seed=0)
    labels = np.asarray(LABELS)
    seen_pos, seen_neg = set(), set()
    for epoch in range(30):
        data.set_epoch(epoch)
        for i in range(len(LABELS)):
            idx = data[i]['data_samples'].contrast_idx
            assert idx.dtype == torch.long and idx.shape == (10, )
            idx = idx.numpy()
            assert idx[0] == i
            assert idx[1] != i and labels[idx[1]] == labels[i]
            assert (labels[idx[2:]] != labels[i]).all()
            seen_pos.add((i, idx[1]))
            seen_neg.update(idx[2:].tolist() if i == 0 else [])
    # over the epochs: every same-class item is a positive, every
    # other-class item a negative
    assert seen_pos == {(i, j) for i in range(12) for j in range(12)
                        if i != j and labels[i] == labels[j]}
    assert seen_neg == set(np.flatnonzero(labels != labels[0]).tolist())


def test_uniform_negatives():
    labels = np.arange(1200) % 3
    data = ContrastIndexDataset(Labelled(labels), num_negatives=800, seed=1)
    counts = np.zeros(1200, dtype=np.int64)
    for epoch in range(25):
        data.set_epoch(epoch)
        counts += np.bincount(data.contrast_idx(0)[2:], minlength=1200)
    others = np.flatnonzero(labels != labels[0])
    # 25 x 800 draws with replacement over the 800 others: 25 each, sd 5
    assert counts[labels == labels[0]].sum() == 0
    assert np.abs(counts[others] - 25).max() < 30
    assert np.abs(counts[others].std() - 5) < 1


def test_deterministic_in_seed_and_epoch():
    a = ContrastIndexDataset(Labelled(LABELS), num_negatives=6, seed=5)
    b = ContrastIndexDataset(Labelled(LABELS), num_negatives=6, seed=5)
    rows = [a.contrast_idx(i) for i in range(12)]
    assert all((r == b.contrast_idx(i)).all() for i, r in enumerate(rows))
    a.set_epoch(1)
    assert a.epoch == 1
    assert any((r != a.contrast_idx(i)).any() for i, r in enumerate(rows))
    b.set_epoch(1)
    assert all((a.contrast_idx(i) == b.contrast_idx(i)).all()
               for i in range(12))
    c = ContrastIndexDataset(Labelled(LABELS), num_negatives=6, seed=6)
    assert any((r != c.contrast_idx(i)).any() for i, r in enumerate(rows))


def test_epoch_is_shared_with_worker_processes():
    """Persistent dataloader workers keep their copy of the dataset: the
    epoch lives in shared memory."""
    data = ContrastIndexDataset(Labelled(LABELS), num_negatives=3, seed=0)
    loader = torch.utils.data.DataLoader(
        data, batch_size=None, num_workers=1, persistent_workers=True,
        collate_fn=lambda item: item['data_samples'].contrast_idx)
    first = [row for row in loader]
    data.set_epoch(7)
    second = [row for row in loader]
    expected = [torch.from_numpy(data.contrast_idx(i)) for i in range(12)]
    assert all(torch.equal(a, b) for a, b in zip(second, expected))
    assert any(not torch.equal(a, b) for a, b in zip(first, second))


def test_wraps_a_registered_dataset_config():
    data = ContrastIndexDataset(
        dict(type='MNIST5k', split='val', num_per_class=5,
             pipeline=[dict(type='mmpretrain.PackInputs')]),
        num_negatives=10, seed=0)
    assert len(data) == 50
    item = data[7]
    assert item['data_samples'].contrast_idx[0] == 7
    assert data.metainfo['classes'][0] == '0'


@pytest.mark.parametrize('labels,kwargs,match', [
    ([0, 0, 1, 1], dict(num_negatives=3), 'num_negatives=3.*at most 2'),
    ([0, 0, 1], dict(num_negatives=1), 'single item'),
    ([0, 0, 1, 1], dict(num_negatives=0), 'num_negatives'),
])
def test_bad_input(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContrastIndexDataset(Labelled(labels), **kwargs)


def test_dataset_without_labels():
    class NoLabels:
        pass

    with pytest.raises(ValueError, match='no get_gt_labels'):
        ContrastIndexDataset(NoLabels())
