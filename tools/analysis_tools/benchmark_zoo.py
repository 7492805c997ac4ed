"""Training-step cost of every cohort method relative to one network.

    python tools/analysis_tools/benchmark_zoo.py [--device cpu] [--threads 2]
        [--batch 64] [--repeats 5] [--out results/benchmarks/zoo_step.json]

Times ``model.train_step`` (preprocess + forward + backward + SGD) of the
CIFAR-100 ResNet-32 config of each method, and of one ResNet-32 with its
own SGD, in one interleaved run (each round calls every row once), on the
same random batch (KDCL and PCL: one random view per peer). The ratio is
to the single network; the L-MCL row is its normal step (the meta step,
due every 50 iterations, is benchmarked by ``benchmark_loss.py``). Writes
the JSON with its provenance and ``table``, which README.md quotes.
"""
import argparse
import os
import os.path as osp
import statistics
import sys
from typing import Callable, Dict, List, Optional

import torch
from mmengine import Config
from mmengine.logging import MMLogger

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_loss import (ROOT, make_batch, time_calls,  # noqa: E402
                            train_step_fn)

from mmmcl.utils.provenance import write_result  # noqa: E402
from mmmcl.utils.result_table import machine_note, markdown_table  # noqa

# (row name, config); the single network is the first config's member
METHODS = [
    ('baseline (2 independent)',
     'configs/baseline/baseline_resnet32x2_1xb128-300e_cifar100.py'),
    ('DML (2)', 'configs/dml/dml_resnet32x2_1xb128-300e_cifar100.py'),
    ('MCL (2)', 'configs/mcl/mcl_resnet32x2_1xb128-300e_cifar100.py'),
    ('L-MCL (2, normal step)',
     'configs/lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py'),
    ('ONE (3 branches)', 'configs/one/one_resnet32_1xb128-300e_cifar100.py'),
    ('CL-ILR (4 heads)',
     'configs/cl_ilr/cl-ilr_resnet32_1xb128-300e_cifar100.py'),
    ('OKDDip (3 peers + leader)',
     'configs/okddip/okddip_resnet32_1xb128-300e_cifar100.py'),
    ('KDCL (2, 2 views)',
     'configs/kdcl/kdcl_resnet32x2_1xb128-300e_cifar100.py'),
    ('PCL (3 branches, 3 views, EMA)',
     'configs/pcl/pcl_resnet32_1xb128-300e_cifar100.py'),
    ('FFL (2 branches + fusion)',
     'configs/ffl/ffl_resnet32_1xb128-300e_cifar100.py'),
]


def views_batch(batch: dict, num_views: int) -> dict:
    """The batch as ``default_collate`` gives MultiView samples: a list of
    V (B, 3, H, W) tensors (view 0 the batch's images, the others shifted
    copies)."""
    images = torch.stack(batch['inputs'])
    return dict(
        inputs=[images.roll(v, dims=-1) for v in range(num_views)],
        data_samples=batch['data_samples'])


def step_fn(config: str, batch: dict, device: torch.device,
            single: bool = False) -> Callable[[], object]:
    """``train_step`` of the config's model (or of its member alone)."""
    cfg = Config.fromfile(config)
    pipeline = cfg.train_dataloader.dataset.pipeline
    views = next((t['num_views'] for t in pipeline
                  if t['type'] == 'mmpretrain.MultiView'), None)
    if views is not None:
        batch = views_batch(batch, views)
    meta_due = False if cfg.model.get('meta') and not single else None
    return train_step_fn(config, batch, device, single, meta_due=meta_due)


def run(batch_size: int, repeats: int, warmup: int, device: str) -> dict:
    dev = torch.device(device)
    batch = make_batch(batch_size, num_classes=100)
    names = ['single ResNet-32'] + [name for name, _ in METHODS]
    steps = [step_fn(f'{ROOT}/{METHODS[3][1]}', batch, dev, single=True)]
    steps += [step_fn(f'{ROOT}/{config}', batch, dev) for _, config in METHODS]
    times = time_calls(steps, repeats, warmup, dev)
    single = statistics.median(times[0])
    rows = [dict(name=name, median_s=statistics.median(t), times_s=t,
                 ratio=statistics.median(t) / single)
            for name, t in zip(names, times)]
    return dict(batch_size=batch_size, repeats=repeats, warmup=warmup,
                rows=rows, configs=dict(METHODS))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int,
                        default=len(os.sched_getaffinity(0)))
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--out', default=osp.join('results', 'benchmarks', 'zoo_step.json'))
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    result = run(args.batch, args.repeats, args.warmup, args.device)
    table = markdown_table(
        [f'training step, CIFAR-100 ResNet-32 configs, B={args.batch} '
         f'random 32x32 images, {args.device}, {args.threads} thread(s); '
         f'median of {args.repeats} interleaved rounds after {args.warmup} '
         f'warm-up; {machine_note(args.device)}', 's/step',
         'ratio to one network'],
        [[r['name'], f"{r['median_s']:.3f}", f"{r['ratio']:.2f}"]
         for r in result['rows']])
    settings: Dict[str, object] = dict(device=args.device,
                                       threads=args.threads)
    path = write_result(args.out, dict(table=table, settings=settings,
                                       **result),
                        argv=[__file__] + list(sys.argv[1:] if argv is None
                                               else argv))
    MMLogger.get_current_instance().info(f'{table}\n-> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
