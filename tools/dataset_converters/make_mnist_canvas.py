"""Compose the MNIST canvas detection / segmentation data.

    python tools/dataset_converters/make_mnist_canvas.py
        [--out data/mnist_canvas] [--seed 0] [--force]

Held-out MNIST-5k digits (never seen in pretraining) pasted on black
canvases, in COCO format with semantic maps; see
:func:`mmmcl.datasets.prepare_mnist_canvas`. An existing set with the same
parameters is reused, one with other parameters replaced.
"""
import argparse
import json
import os.path as osp
import time
from typing import List, Optional

from mmmcl.datasets.mnist_canvas import MANIFEST_FILE, prepare_mnist_canvas


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Compose the MNIST canvas detection / segmentation data')
    parser.add_argument(
        '--out',
        default='data/mnist_canvas',
        help='output directory (default: data/mnist_canvas, the data_root '
        'of configs/_base_/datasets/mnist_canvas_*.py)')
    parser.add_argument(
        '--seed', type=int, default=0, help='generation seed (default: 0)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='regenerate even if the output holds matching or damaged data')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    root = prepare_mnist_canvas(
        args.out, force=args.force, progress=True, seed=args.seed)
    with open(osp.join(root, MANIFEST_FILE)) as f:
        manifest = json.load(f)
    print(f'MNIST canvas data in {osp.abspath(root)} '
          f'({time.perf_counter() - start:.1f} s):')
    for split, counts in manifest['counts'].items():
        print(f'  {split}: {counts["images"]} images, '
              f'{counts["instances"]} instances, '
              f'{counts["dropped_instances"]} hidden digits dropped')


if __name__ == '__main__':
    main()
