import os.path as osp
from typing import Sequence

from mmengine.config import Config

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# Datasets the project builds itself: the command that writes them.
BUILDERS = {
    'MNISTCanvasDetDataset': 'tools/dataset_converters/make_mnist_canvas.py',
    'MNISTCanvasSegDataset': 'tools/dataset_converters/make_mnist_canvas.py',
}


def check_data_roots(cfg: Config,
                     loaders: Sequence[str] = DATALOADERS) -> None:
    """Fail before building anything if a dataset's ``data_root`` is missing.

    Args:
        cfg (Config): The config.
        loaders (Sequence[str]): The dataloader fields to check.

    Raises:
        FileNotFoundError: Naming the config field, the path and the fix.
    """
    for loader in loaders:
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        # dataset wrappers (e.g. ConcatDataset) nest the real ones
        stack = [(f'{loader}.dataset', dataset)]
        while stack:
            field, ds = stack.pop()
            for key in ('dataset', 'datasets'):
                inner = ds.get(key)
                if isinstance(inner, dict):
                    stack.append((f'{field}.{key}', inner))
                elif isinstance(inner, (list, tuple)):
                    stack += [(f'{field}.{key}[{i}]', d)
                              for i, d in enumerate(inner)]
            root = ds.get('data_root')
            builder = BUILDERS.get(str(ds.get('type', '')).split('.')[-1])
            if root and not osp.isdir(root) and builder:
                raise FileNotFoundError(
                    f'`{field}.data_root` is {root!r}, which does not exist '
                    f'(config: {cfg.filename}). This data is made from the '
                    f'embedded digits: run `python {builder} --out {root}`.')
            if root and not osp.isdir(root):
                raise FileNotFoundError(
                    f'`{field}.data_root` is {root!r}, which does not exist '
                    f'(config: {cfg.filename}). Put the data there (see the '
                    'README for the layout) or point the field at it, e.g. '
                    f'--cfg-options {field}.data_root=/path/to/data.')
