"""Images/s of CIFAR-100's two augmentation paths: crop and flip in the CPU
workers (``cifar100_bs128.py``) or on the device (``..._device_aug.py``).

    python tools/analysis_tools/benchmark_augment.py [--device cuda]
        [--batch-size 128] [--batches 50] [--workers 4]
        [--out results/benchmarks/augment.json]

Each path is built from its dataset base: the train pipeline in a
``DataLoader`` with ``--workers`` workers and mmengine's ``pseudo_collate``
(the configs' loader) over random 32x32 images held in memory (CIFAR-100
itself is not needed), then the data preprocessor in training mode on
``--device``. Per path, images/s of the loader alone (after its first
batch) and of the preprocessor alone (host-to-device copy included): the
workers keep up where the loader's rate exceeds the training step's.
:func:`measure_augment_paths` is what other tools call.
"""
import argparse
import os.path as osp
import time
from typing import Dict, List

import numpy as np
import torch
from mmengine import Config
from mmengine.dataset import pseudo_collate
from mmengine.dataset.base_dataset import Compose
from mmengine.registry import DefaultScope
from torch.utils.data import DataLoader, Dataset

from mmmcl.registry import MODELS
from mmmcl.utils import register_all_modules
from mmmcl.utils.provenance import write_result
from mmmcl.utils.result_table import markdown_table

# configs/ beside tools/ (the repo, or the .mim of an installed mmmcl)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PATHS = {
    'cpu': f'{ROOT}/configs/_base_/datasets/cifar100_bs128.py',
    'device': f'{ROOT}/configs/_base_/datasets/cifar100_bs128_device_aug.py',
}


class InMemoryImages(Dataset):
    """``num`` random (32, 32, 3) uint8 images with labels through
    ``pipeline``, as mmpretrain's CIFAR100 gives them to it."""

    def __init__(self, num: int, pipeline: List[dict]) -> None:
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, (num, 32, 32, 3), dtype=np.uint8)
        self.pipeline = Compose(pipeline)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return self.pipeline(
            dict(img=self.images[index].copy(), gt_label=index % 100))


def _rate(num_images: int, seconds: float) -> float:
    return num_images / max(seconds, 1e-9)


def measure_augment_paths(device: str = 'cuda',
                          batch_size: int = 128,
                          batches: int = 50,
                          workers: int = 4) -> Dict[str, Dict[str, float]]:
    """``{'cpu': {...}, 'device': {...}}``, each with ``loader_img_s`` and
    ``preprocess_img_s`` (images/s), measured as the module docstring
    says."""
    register_all_modules()
    device = torch.device(device)
    results = {}
    with DefaultScope.overwrite_default_scope('mmmcl'):
        for name, path in PATHS.items():
            cfg = Config.fromfile(path)
            loader = DataLoader(
                InMemoryImages(batch_size * (batches + 1),
                               cfg.train_dataloader.dataset.pipeline),
                batch_size=batch_size,
                num_workers=workers,
                collate_fn=pseudo_collate)
            iterator = iter(loader)
            first = next(iterator)  # worker start-up is not timed
            start = time.perf_counter()
            loaded = [first] + list(iterator)
            loader_s = time.perf_counter() - start
            preprocessor = MODELS.build(cfg.data_preprocessor).to(device)
            preprocessor(first, True)  # warm-up
            _synchronize(device)
            start = time.perf_counter()
            for data in loaded[1:]:
                preprocessor(data, True)
            _synchronize(device)
            preprocess_s = time.perf_counter() - start
            results[name] = dict(
                loader_img_s=_rate(batch_size * batches, loader_s),
                preprocess_img_s=_rate(batch_size * batches, preprocess_s))
    return results


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--batches', type=int, default=50)
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--out', help='JSON file for the rows and table')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    results = measure_augment_paths(args.device, args.batch_size,
                                    args.batches, args.workers)
    table = markdown_table(
        ['crop + flip', f'loader img/s ({args.workers} workers)',
         f'preprocessor img/s ({args.device})'],
        [[name, f"{r['loader_img_s']:.0f}", f"{r['preprocess_img_s']:.0f}"]
         for name, r in results.items()])
    print(table)
    if args.out:
        write_result(args.out, dict(rows=results, table=table), argv)


if __name__ == '__main__':
    main()
