"""Benchmark the fused in-batch contrast loss and the cohort train steps.

    python tools/analysis_tools/benchmark_loss.py [--device cpu] [--threads 2]

1. ``InBatchContrastLoss`` vs the per-block loop ``naive_inbatch_contrast``:
   forward + backward of the four terms' sum, peak memory, agreement (exit
   code 1 if a value or gradient differs by more than 1e-5, relative).
2. ``train_step`` of a ResNet-32 alone, the MCL and L-MCL pairs, meta step.
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from mmmcl.models.losses import InBatchContrastLoss
from mmmcl.models.utils import cohort_blocks
from mmmcl.registry import MODELS
from mmmcl.testing import naive_inbatch_contrast

TOL = 1e-5
TERMS = ('vcl', 'soft_vcl', 'icl', 'soft_icl')
# configs/ beside tools/ (the repo, or the .mim of an installed mmmcl)
ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LMCL_CONFIG = f'{ROOT}/configs/lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py'
MCL_CONFIG = f'{ROOT}/configs/mcl/mcl_resnet32x2_1xb128-300e_cifar100.py'
MEMBER = 'resnet32'  # the member of both configs


def time_calls(fns: Sequence[Callable[[], object]], repeats: int,
               warmup: int, device: torch.device) -> List[List[float]]:
    """Wall times in seconds of ``repeats`` calls of each of ``fns``.

    The calls are interleaved (fn0, fn1, ..., fn0, fn1, ...) so that load
    from other processes hits all of them alike and their ratios hold on a
    noisy machine.
    """
    sync = torch.cuda.synchronize if device.type == 'cuda' else lambda d: d
    times = [[] for _ in fns]
    for n in range(warmup + repeats):
        for fn, fn_times in zip(fns, times):
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if n >= warmup:
                fn_times.append(time.perf_counter() - start)
    return times


def peak_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated during ``fn()`` above those live before it.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: running sum of the
    allocations and frees the CPU allocator reports to ``torch.profiler``
    (``profile_memory=True``): temporaries and saved tensors included.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        fn()
    events = [e for e in p.profiler.kineto_results.events()
              if e.name() == '[memory]']
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()  # negative for a free
        peak = max(peak, live)
    return peak


def run_loss_benchmark(num_nets: int = 2, num_stages: int = 3,
                       batch_size: int = 128, embed_dim: int = 128,
                       repeats: int = 20, warmup: int = 3,
                       device: str = 'cpu', seed: int = 0) -> dict:
    """Time, peak memory and agreement of the naive loop and the fused loss.

    Inputs: M x S random L2-normalised (B, D) leaf embeddings, labels of
    B/2 classes x 2 images, random block weights (num_blocks, B) in [0, 1).

    Returns:
        dict: ``rows`` (``name``, ``median_s``, ``peak_bytes``,
        ``time_ratio``, ``mem_ratio``: each / naive), ``value_rel_diff`` per
        term, ``grad_rel_diff`` (worst embedding), ``ok`` (all <= TOL).
    """
    if batch_size % 2:
        raise ValueError(f'`batch_size` must be even, got {batch_size}.')
    dev, gen = torch.device(device), torch.Generator().manual_seed(seed)
    num_blocks = len(cohort_blocks([num_stages] * num_nets))
    emb = [[F.normalize(torch.randn(batch_size, embed_dim, generator=gen),
                        dim=1).to(dev).requires_grad_()
            for _ in range(num_stages)] for _ in range(num_nets)]
    flat = [e for net in emb for e in net]
    labels = torch.arange(batch_size // 2).repeat_interleave(2)
    labels = labels[torch.randperm(batch_size, generator=gen)].to(dev)
    weights = torch.rand(num_blocks, batch_size, generator=gen).to(dev)

    def step(fn: Callable) -> Dict[str, Tensor]:
        for e in flat:
            e.grad = None
        terms = fn(emb, labels, weights)
        sum(terms[k] for k in TERMS).backward()
        return terms

    impls = [('naive per-block loop', naive_inbatch_contrast),
             ('mmmcl InBatchContrastLoss', InBatchContrastLoss())]
    results = []
    for _, fn in impls:
        terms = step(fn)
        results.append(([terms[k].detach() for k in TERMS],
                        [e.grad.clone() for e in flat]))
    times = time_calls([lambda fn=fn: step(fn) for _, fn in impls], repeats,
                       warmup, dev)
    rows = []
    for (name, fn), fn_times in zip(impls, times):
        for e in flat:  # free them outside the measured window
            e.grad = None
        rows.append(dict(name=name, median_s=statistics.median(fn_times),
                         peak_bytes=peak_memory(lambda: step(fn), dev)))
    for row in rows:
        row['time_ratio'] = row['median_s'] / rows[0]['median_s']
        row['mem_ratio'] = row['peak_bytes'] / max(rows[0]['peak_bytes'], 1)
    (ref_vals, ref_grads), (vals, grads) = results

    def rel_diff(x: Tensor, ref: Tensor) -> float:  # max|x - ref| / max|ref|
        x, ref = x.double(), ref.double()
        return ((x - ref).abs().max() / ref.abs().max()).item()

    value_diff = {k: rel_diff(v, r) for k, v, r in zip(TERMS, vals, ref_vals)}
    grad_diff = max(rel_diff(g, r) for g, r in zip(grads, ref_grads))
    return dict(
        shapes=dict(M=num_nets, S=num_stages, B=batch_size, D=embed_dim,
                    num_blocks=num_blocks),
        rows=rows, value_rel_diff=value_diff, grad_rel_diff=grad_diff,
        ok=all(d <= TOL for d in [grad_diff, *value_diff.values()]))


def make_batch(batch_size: int, num_classes: int, seed: int = 0) -> dict:
    """Random uint8 3x32x32 images, B/2 classes x 2, as a dataloader gives."""
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.arange(batch_size // 2) % num_classes).repeat_interleave(2)
    inputs = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8,
                            generator=gen) for _ in range(batch_size)]
    return dict(inputs=inputs,
                data_samples=[DataSample().set_gt_label(int(y))
                              for y in labels])


def train_step_fn(config: str, data: dict, device: torch.device,
                  single: bool = False,
                  meta_due: Optional[bool] = None) -> Callable[[], object]:
    """``model.train_step`` of a config's cohort or (``single``) of the
    member alone with its own SGD (the cohort optimizer's args).

    ``meta_due``: True runs the L-MCL meta step at every step (train_iter 0,
    interval 1), False never (train_iter 1, interval 10**9).
    """
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        if single:
            model_cfg = copy.deepcopy(cfg[MEMBER])
            model_cfg.head.num_classes = cfg.data_preprocessor.num_classes
            model_cfg.data_preprocessor = cfg.data_preprocessor
            optim_cfg = dict(type='OptimWrapper',
                             optimizer=cfg.optim_wrapper.cohort.optimizer)
        else:
            model_cfg, optim_cfg = cfg.model, cfg.optim_wrapper
            model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
        model = MODELS.build(model_cfg).to(device)
        optim_wrapper = build_optim_wrapper(model, optim_cfg)
    if meta_due is not None:
        model.train_iter = 0 if meta_due else 1
        model.meta_step.interval = 1 if meta_due else 10**9
    model.train()
    return lambda: model.train_step(data, optim_wrapper)


def run_train_benchmark(batch_size: int = 128, repeats: int = 20,
                        warmup: int = 3, device: str = 'cpu') -> dict:
    """Median s/step of a member alone, M x it, MCL, L-MCL and its meta
    step: ``rows`` of ``name``, ``median_s``, ``ratio``, ``img_per_s``."""
    dev, data = torch.device(device), make_batch(batch_size, num_classes=100)
    m = len(Config.fromfile(LMCL_CONFIG).model.members)
    runs = [('single model', LMCL_CONFIG, dict(single=True)),
            ('MCL pair', MCL_CONFIG, {}),
            ('L-MCL pair (normal step)', LMCL_CONFIG, dict(meta_due=False)),
            ('with meta', LMCL_CONFIG, dict(meta_due=True))]
    steps = [train_step_fn(cfg, data, dev, **kwargs) for _, cfg, kwargs in runs]
    times = time_calls(steps, repeats, warmup, dev)
    med = {name: statistics.median(t) for (name, _, _), t in zip(runs, times)}
    med[f'{m} x single'] = m * med['single model']
    med['L-MCL meta step'] = med.pop('with meta') - med[runs[2][0]]
    order = ['single model', f'{m} x single', 'MCL pair', runs[2][0],
             'L-MCL meta step']
    return dict(batch_size=batch_size, rows=[
        dict(name=n, median_s=med[n], ratio=med[n] / med[order[1]],
             img_per_s=batch_size / med[n]) for n in order])


def format_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Plain text table: first column left-aligned, the others right."""
    cells = [list(header)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ['  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    return '\n'.join([lines[0], '-' * len(lines[0])] + lines[1:])


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int,
                        default=len(os.sched_getaffinity(0)),
                        help='torch.set_num_threads (default: all CPUs)')
    for flag, default, text in [
            ('repeats', 20, 'timed calls'), ('warmup', 3, 'untimed calls'),
            ('num-nets', 2, 'M'), ('num-stages', 3, 'S'),
            ('batch-size', 128, 'B'), ('embed-dim', 128, 'D'),
            ('train-batch', 128, 'batch of the training-step benchmark')]:
        parser.add_argument(f'--{flag}', type=int, default=default, help=text)
    parser.add_argument('--out', help='also write the results to this JSON')
    parser.add_argument('--skip-train-step', action='store_true')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run and print both tables; 1 if fused and naive disagree, else 0."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    logger = MMLogger.get_current_instance()
    env = (f'{args.device}, {args.threads} threads, torch {torch.__version__}'
           f', median of {args.repeats} after {args.warmup} warm-up')
    loss = run_loss_benchmark(args.num_nets, args.num_stages, args.batch_size,
                              args.embed_dim, args.repeats, args.warmup,
                              args.device)
    mem = ('CUDA max_memory_allocated' if args.device == 'cuda' else
           'running sum of CPU allocator events in torch.profiler')
    table = format_table(
        ['implementation', 'fwd+bwd ms', 'peak MiB', 'time ratio',
         'mem ratio'],
        [[r['name'], f"{r['median_s'] * 1e3:.2f}",
          f"{r['peak_bytes'] / 2**20:.2f}", f"{r['time_ratio']:.3f}",
          f"{r['mem_ratio']:.3f}"] for r in loss['rows']])
    diffs = '  '.join(f'{k} {v:.1e}' for k, v in loss['value_rel_diff'].items())
    logger.info(
        f'Loss benchmark {loss["shapes"]}, fp32, {env}\npeak MiB: most bytes '
        f'allocated at once during one fwd+bwd, beyond those live before '
        f'({mem}); ratios: / naive\n{table}\nmax rel. diff mmmcl vs naive '
        f'(tol {TOL:.0e}): {diffs}  grad {loss["grad_rel_diff"]:.1e}  -> '
        + ('OK' if loss['ok'] else 'FAIL'))
    results = dict(env=env, loss=loss)
    if not args.skip_train_step:
        train = run_train_benchmark(args.train_batch, args.repeats,
                                    args.warmup, args.device)
        table = format_table(
            ['model', 'median s/step', 'ratio to M x single', 'img/s'],
            [[r['name'], f"{r['median_s']:.3f}", f"{r['ratio']:.2f}",
              f"{r['img_per_s']:.1f}"] for r in train['rows']])
        logger.info(
            f'Training-step benchmark: ResNet-32 members, batch '
            f'{args.train_batch} of random 32x32 images, {env}\ntrain_step = '
            'preprocess + forward + backward + SGD step. L-MCL normal step: '
            'meta step not due (train_iter=1, interval 1e9); meta step: a '
            'step with it (train_iter=0, interval 1) minus the normal step\n'
            + table)
        results['train_step'] = train
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    return 0 if loss['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
