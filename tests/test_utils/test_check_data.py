import pytest
from mmengine.config import Config

from mmmcl.utils import check_data_roots


def test_missing_data_root_names_field_and_fix(tmp_path):
    cfg = Config(
        dict(train_dataloader=dict(dataset=dict(
            type='RepeatDataset',
            dataset=dict(type='mmpretrain.CIFAR100',
                         data_root=str(tmp_path / 'nope'))))))
    with pytest.raises(FileNotFoundError) as e:
        check_data_roots(cfg)
    assert '`train_dataloader.dataset.dataset.data_root`' in str(e.value)
    assert '--cfg-options train_dataloader.dataset.dataset.data_root=' in \
        str(e.value)
    (tmp_path / 'nope').mkdir()
    check_data_roots(cfg)


def test_missing_canvas_data_says_how_to_make_it(tmp_path):
    root = str(tmp_path / 'mnist_canvas')
    cfg = Config(
        dict(val_dataloader=dict(dataset=dict(
            type='mmmcl.MNISTCanvasSegDataset', data_root=root))))
    with pytest.raises(FileNotFoundError,
                       match='make_mnist_canvas.py --out .*mnist_canvas'):
        check_data_roots(cfg)
