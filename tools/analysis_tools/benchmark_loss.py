"""Benchmark the fused contrast losses and the cohort train steps.

    python tools/analysis_tools/benchmark_loss.py [--device cpu] [--threads 2]
        [--out-dir results/benchmarks]

1. ``InBatchContrastLoss`` vs the per-block loop ``naive_inbatch_contrast``:
   forward + backward of the four terms' sum, peak memory, agreement (exit
   code 1 if a value or gradient differs by more than 1e-5, relative).
2. ``MemoryBankContrastLoss`` vs a per-block loop that gathers bank rows per
   block as the reference does (M=2, S=4, B=64, K=8192, d=128 by default).
3. ``train_step`` of a ResNet-32 alone, M of them one after the other, the
   MCL and L-MCL pairs, the meta step alone and an L-MCL step with it due,
   all in one interleaved run.

Each part writes ``OUT_DIR/{inbatch_loss,bank_loss,train_step}.json`` with
its provenance (:func:`mmmcl.utils.provenance.write_result`) and ``table``,
the markdown table that README.md quotes (``tests/test_readme_provenance.py``
fails when they differ).
"""
import argparse
import copy
import math
import os
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from mmmcl.models.losses import InBatchContrastLoss, MemoryBankContrastLoss
from mmmcl.models.utils import cohort_blocks
from mmmcl.registry import MODELS
from mmmcl.testing import (naive_bank_block, naive_inbatch_contrast,
                           train_progress)
from mmmcl.utils.provenance import write_result
from mmmcl.utils.result_table import machine_note, markdown_table

TOL = 1e-5
TERMS = ('vcl', 'soft_vcl', 'icl', 'soft_icl')
# configs/ beside tools/ (the repo, or the .mim of an installed mmmcl)
ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LMCL_CONFIG = f'{ROOT}/configs/lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py'
MCL_CONFIG = f'{ROOT}/configs/mcl/mcl_resnet32x2_1xb128-300e_cifar100.py'
MEMBER = 'resnet32'  # the member of both configs


def time_calls(fns: Sequence[Callable[[], object]], repeats: int,
               warmup: int, device: torch.device,
               every: Optional[Sequence[int]] = None) -> List[List[float]]:
    """Wall times in seconds of ``repeats`` calls of each of ``fns``.

    The calls are interleaved (fn0, fn1, ..., fn0, fn1, ...) so that load
    from other processes hits all of them alike and their ratios hold on a
    noisy machine. ``every[i] = k`` runs ``fns[i]`` (a slow one) only in
    every k-th timed round, ``ceil(repeats / k)`` times; all run in each
    warm-up round.
    """
    sync = torch.cuda.synchronize if device.type == 'cuda' else lambda d: d
    every = [1] * len(fns) if every is None else every
    times = [[] for _ in fns]
    for n in range(warmup + repeats):
        for fn, fn_times, k in zip(fns, times, every):
            if n >= warmup and (n - warmup) % k:
                continue
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


def compare(impls: Sequence[Tuple[str, Callable[[], Dict[str, Tensor]]]],
            leaves: Sequence[Tensor], repeats: int, warmup: int,
            device: torch.device) -> dict:
    """Time, peak memory and agreement of implementations of the terms.

    Args:
        impls: ``(name, step)``; ``step()`` runs forward + backward into
            ``leaves``' ``.grad`` and returns the terms. The first is the
            reference of the ratios and of the agreement.
        leaves: The tensors whose gradients are compared.

    Returns:
        dict: ``rows`` (``name``, ``median_s``, ``peak_bytes``,
        ``time_ratio``, ``mem_ratio``), ``value_rel_diff`` per term and
        ``grad_rel_diff`` (worst leaf) of the last implementation, ``ok``.
    """
    def clear():
        for leaf in leaves:
            leaf.grad = None

    results = []
    for _, step in impls:
        clear()
        terms = step()
        results.append(([terms[k].detach() for k in TERMS],
                        [leaf.grad.clone() for leaf in leaves]))
    clear()
    times = time_calls(
        [lambda step=step: (clear(), step()) for _, step in impls], repeats,
        warmup, device)
    rows = []
    for (name, step), fn_times in zip(impls, times):
        clear()  # free them outside the measured window
        rows.append(dict(name=name, median_s=statistics.median(fn_times),
                         peak_bytes=peak_memory(step, device)))
    for row in rows:
        row['time_ratio'] = row['median_s'] / rows[0]['median_s']
        row['mem_ratio'] = row['peak_bytes'] / max(rows[0]['peak_bytes'], 1)
    (ref_vals, ref_grads), (vals, grads) = results[0], results[-1]

    def rel_diff(x: Tensor, ref: Tensor) -> float:  # max|x - ref| / max|ref|
        x, ref = x.double(), ref.double()
        return ((x - ref).abs().max() / ref.abs().max()).item()

    value_diff = {k: rel_diff(v, r) for k, v, r in zip(TERMS, vals, ref_vals)}
    grad_diff = max(rel_diff(g, r) for g, r in zip(grads, ref_grads))
    return dict(rows=rows, value_rel_diff=value_diff, grad_rel_diff=grad_diff,
                ok=all(d <= TOL for d in [grad_diff, *value_diff.values()]))


def random_embeddings(num_nets: int, num_stages: int, batch_size: int,
                      embed_dim: int, gen: torch.Generator,
                      device: torch.device) -> List[List[Tensor]]:
    """M x S random L2-normalised (B, D) leaf embeddings."""
    return [[F.normalize(torch.randn(batch_size, embed_dim, generator=gen),
                         dim=1).to(device).requires_grad_()
             for _ in range(num_stages)] for _ in range(num_nets)]


def run_loss_benchmark(num_nets: int = 2, num_stages: int = 3,
                       batch_size: int = 128, embed_dim: int = 128,
                       repeats: int = 20, warmup: int = 3,
                       device: str = 'cpu', seed: int = 0) -> dict:
    """The in-batch terms: the naive loop vs ``InBatchContrastLoss``.

    Inputs: random embeddings, labels of B/2 classes x 2 images, random
    block weights (num_blocks, B) in [0, 1). Returns :func:`compare`'s dict
    and the ``shapes``.
    """
    if batch_size % 2:
        raise ValueError(f'`batch_size` must be even, got {batch_size}.')
    dev, gen = torch.device(device), torch.Generator().manual_seed(seed)
    num_blocks = len(cohort_blocks([num_stages] * num_nets))
    emb = random_embeddings(num_nets, num_stages, batch_size, embed_dim, gen,
                            dev)
    labels = torch.arange(batch_size // 2).repeat_interleave(2)
    labels = labels[torch.randperm(batch_size, generator=gen)].to(dev)
    weights = torch.rand(num_blocks, batch_size, generator=gen).to(dev)

    def step(fn: Callable) -> Dict[str, Tensor]:
        terms = fn(emb, labels, weights)
        sum(terms[k] for k in TERMS).backward()
        return terms

    fused = InBatchContrastLoss()
    result = compare([('naive per-block loop', lambda: step(
        naive_inbatch_contrast)), ('mmmcl InBatchContrastLoss',
                                   lambda: step(fused))],
                     [e for net in emb for e in net], repeats, warmup, dev)
    result['shapes'] = dict(M=num_nets, S=num_stages, B=batch_size,
                            D=embed_dim, num_blocks=num_blocks)
    return result


def run_bank_benchmark(num_nets: int = 2, num_stages: int = 4,
                       batch_size: int = 64, num_negatives: int = 8192,
                       embed_dim: int = 128, num_samples: int = 100_000,
                       repeats: int = 3, warmup: int = 1,
                       device: str = 'cpu', seed: int = 0) -> dict:
    """The bank terms: a per-block loop vs ``MemoryBankContrastLoss``.

    The naive loop gathers the bank rows of every block, as the reference
    code does, but runs the backward of each block before the next: the
    reference's single graph would hold ``literal_graph_bytes`` of gathered
    rows (4 per block), more than these machines have. Returns
    :func:`compare`'s dict, the ``shapes`` and ``literal_graph_bytes``.
    """
    dev, gen = torch.device(device), torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    stages = [num_stages] * num_nets
    num_blocks = len(cohort_blocks(stages))
    emb = random_embeddings(num_nets, num_stages, batch_size, embed_dim, gen,
                            dev)
    idx = torch.randint(0, num_samples, (batch_size, num_negatives + 2),
                        generator=gen).to(dev)
    weights = torch.rand(num_blocks, batch_size, generator=gen).to(dev)
    fused = MemoryBankContrastLoss(num_samples, embed_dim, num_nets).to(dev)

    def naive_step() -> Dict[str, Tensor]:
        totals = dict.fromkeys(TERMS, 0.)
        for n, (i, k, j, z) in enumerate(cohort_blocks(stages)):
            terms = naive_bank_block(emb[i][k], emb[j][z], fused.banks[i],
                                     fused.banks[j], idx, weights[n])
            sum(terms.values()).backward()
            for key in TERMS:
                totals[key] = totals[key] + terms[key].detach()
        return totals

    def fused_step() -> Dict[str, Tensor]:
        terms = fused(emb, idx, weights)
        sum(terms.values()).backward()
        return terms

    result = compare([('naive per-block loop', naive_step),
                      ('mmmcl MemoryBankContrastLoss', fused_step)],
                     [e for net in emb for e in net], repeats, warmup, dev)
    result['shapes'] = dict(M=num_nets, S=num_stages, B=batch_size,
                            K=num_negatives, D=embed_dim,
                            num_blocks=num_blocks, num_samples=num_samples)
    result['literal_graph_bytes'] = (num_blocks * 4 * batch_size *
                                     (num_negatives + 2) * embed_dim * 4)
    return result



def make_batch(batch_size: int, num_classes: int, seed: int = 0) -> dict:
    """Random uint8 3x32x32 images, B/2 classes x 2, as a dataloader gives."""
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.arange(batch_size // 2) % num_classes).repeat_interleave(2)
    inputs = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8,
                            generator=gen) for _ in range(batch_size)]
    return dict(inputs=inputs,
                data_samples=[DataSample().set_gt_label(int(y))
                              for y in labels])


def build_model(config: str, device: torch.device,
                single: bool = False) -> tuple:
    """``(model, optim_wrapper)`` of a config's cohort or (``single``) of
    the member alone with its own SGD (the cohort optimizer's args)."""
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
    model.train()
    return model, optim_wrapper


def train_step_fn(config: str, data: dict, device: torch.device,
                  single: bool = False,
                  meta_due: Optional[bool] = None) -> Callable[[], object]:
    """``model.train_step`` of :func:`build_model`'s model.

    ``meta_due``: True runs the L-MCL meta step at every step (batch index
    0, interval 1), False never (batch index 1, interval 10**9).
    """
    model, optim_wrapper = build_model(config, device, single)
    if meta_due is not None:
        model.meta_step.interval = 1 if meta_due else 10**9

    def step() -> object:
        with train_progress(batch_idx=0 if meta_due else 1):
            return model.train_step(data, optim_wrapper)

    return step


def meta_step_fn(config: str, data: dict,
                 device: torch.device) -> Callable[[], object]:
    """The L-MCL meta step alone, on the preprocessed batch, as
    ``train_step`` calls it after the normal update."""
    model, optim_wrapper = build_model(config, device)
    data = model.data_preprocessor(data, True)
    return lambda: model.meta_update(data['inputs'], data['data_samples'],
                                     optim_wrapper['cohort'],
                                     optim_wrapper['meta'])


def run_train_benchmark(batch_size: int = 128, repeats: int = 10,
                        meta_repeats: int = 3, warmup: int = 1,
                        device: str = 'cpu') -> dict:
    """Seconds per ``train_step``, all measured in one interleaved run.

    Rows: a ResNet-32 alone; M of them stepped one after the other; the MCL
    pair; the L-MCL pair without and with the meta step due; the meta step
    alone (these two ``meta_repeats`` times, the others ``repeats`` times);
    and, derived from two measured rows, the L-MCL step with the meta step
    amortised over its interval: ``((interval - 1) * normal + due) /
    interval``.

    Returns:
        dict: ``rows`` of ``name``, ``median_s``, ``times_s`` (empty when
        derived), ``ratio`` (to the measured M x single), ``img_per_s``
        (None for the meta step alone), ``derived``; ``batch_size``,
        ``num_members``, ``meta_interval``, ``repeats``, ``meta_repeats``,
        ``warmup``.
    """
    dev, data = torch.device(device), make_batch(batch_size, num_classes=100)
    cfg = Config.fromfile(LMCL_CONFIG)
    m, interval = len(cfg.model.peers.members), cfg.model.meta.interval
    singles = [train_step_fn(LMCL_CONFIG, data, dev, single=True)
               for _ in range(m)]
    slow = max(1, math.ceil(repeats / max(meta_repeats, 1)))
    normal = 'L-MCL pair, normal step (meta step not due)'
    due = 'L-MCL pair, step with the meta step due'
    # (name, step, run every k-th round, a step of the batch's images)
    runs = [
        ('single network', singles[0], 1, True),
        (f'{m} x single network (stepped one after the other)',
         lambda: [step() for step in singles], 1, True),
        ('MCL pair', train_step_fn(MCL_CONFIG, data, dev), 1, True),
        (normal, train_step_fn(LMCL_CONFIG, data, dev, meta_due=False), 1,
         True),
        ('L-MCL meta step alone', meta_step_fn(LMCL_CONFIG, data, dev),
         slow, False),
        (due, train_step_fn(LMCL_CONFIG, data, dev, meta_due=True), slow,
         True),
    ]
    times = time_calls([run[1] for run in runs], repeats, warmup, dev,
                       every=[run[2] for run in runs])
    rows = [dict(name=name, median_s=statistics.median(t), times_s=t,
                 images=images, derived=False)
            for (name, _, _, images), t in zip(runs, times)]
    med = {row['name']: row['median_s'] for row in rows}
    rows.append(dict(
        name=f'L-MCL pair, meta step amortised over {interval} iterations '
        f'(derived: ({interval - 1} x normal + due) / {interval})',
        median_s=((interval - 1) * med[normal] + med[due]) / interval,
        times_s=[], images=True, derived=True))
    for row in rows:
        row['ratio'] = row['median_s'] / rows[1]['median_s']
        row['img_per_s'] = batch_size / row['median_s'] \
            if row.pop('images') else None
    return dict(batch_size=batch_size, num_members=m, meta_interval=interval,
                repeats=repeats, meta_repeats=len(times[-1]), warmup=warmup,
                rows=rows)


def comparison_table(title: str, result: dict) -> str:
    """The markdown table of :func:`compare`: time, memory, agreement."""
    worst = max(result['value_rel_diff'].values())
    rows = []
    for n, r in enumerate(result['rows']):
        agree = 'reference' if n == 0 else \
            f"{worst:.1e} / {result['grad_rel_diff']:.1e}"
        rows.append([r['name'], f"{r['median_s'] * 1e3:.2f}",
                     f"{r['peak_bytes'] / 2**20:.2f}",
                     f"{r['time_ratio']:.3f}", f"{r['mem_ratio']:.3f}",
                     agree])
    return markdown_table([title, 'fwd+bwd ms', 'peak MiB', 'time ratio',
                           'memory ratio', 'max rel. diff values / grads'],
                          rows)


def train_table(title: str, result: dict) -> str:
    """The markdown table of :func:`run_train_benchmark`."""
    m = result['num_members']
    rows = [[r['name'], f"{r['median_s']:.3f}", f"{r['ratio']:.2f}",
             '-' if r['img_per_s'] is None else f"{r['img_per_s']:.1f}"]
            for r in result['rows']]
    return markdown_table(
        [title, 's/step', f'ratio to {m} x single', 'img/s'], rows)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int,
                        default=len(os.sched_getaffinity(0)),
                        help='torch.set_num_threads (default: all CPUs)')
    for flag, default, text in [
            ('repeats', 20, 'timed calls of the in-batch loss'),
            ('warmup', 3, 'untimed calls of the in-batch loss'),
            ('num-nets', 2, 'M'), ('num-stages', 3, 'S'),
            ('batch-size', 128, 'B'), ('embed-dim', 128, 'D'),
            ('train-batch', 128, 'batch of the training-step benchmark'),
            ('train-repeats', 10, 'timed rounds of the training steps'),
            ('meta-repeats', 3, 'timed calls of the two meta-step rows'),
            ('train-warmup', 1, 'untimed rounds of the training steps')]:
        parser.add_argument(f'--{flag}', type=int, default=default, help=text)
    for flag, default, text in [
            ('bank-stages', 4, 'S of the bank case'),
            ('bank-batch', 64, 'B of the bank case'),
            ('bank-negatives', 8192, 'K of the bank case'),
            ('bank-samples', 100_000, 'bank rows of the bank case'),
            ('bank-repeats', 3, 'timed calls of the bank case')]:
        parser.add_argument(f'--{flag}', type=int, default=default, help=text)
    parser.add_argument(
        '--out-dir', default=osp.join('results', 'benchmarks'),
        help='where the JSON results go (default: results/benchmarks)')
    parser.add_argument('--skip-train-step', action='store_true')
    parser.add_argument(
        '--skip-bank', action='store_true',
        help='skip the memory-bank case (about 4 min on 2 CPU cores)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run, log and write each part; 1 if fused and naive disagree."""
    args = parse_args(argv)
    command = [__file__] + list(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    logger = MMLogger.get_current_instance()
    note = machine_note(args.device)
    settings = dict(device=args.device, threads=args.threads)

    def write(name: str, table: str, result: dict) -> None:
        path = write_result(
            osp.join(args.out_dir, name),
            dict(table=table, settings=settings, **result), argv=command)
        logger.info(f'{table}\n-> {path}')

    loss = run_loss_benchmark(args.num_nets, args.num_stages, args.batch_size,
                              args.embed_dim, args.repeats, args.warmup,
                              args.device)
    shapes = ' '.join(f'{k}={v}' for k, v in loss['shapes'].items())
    write('inbatch_loss.json', comparison_table(
        f'in-batch loss, {shapes}, fp32, {args.device}, median of '
        f'{args.repeats} after {args.warmup} warm-up; {note}', loss), loss)
    ok = loss['ok']
    if not args.skip_bank:
        bank = run_bank_benchmark(
            args.num_nets, args.bank_stages, args.bank_batch,
            args.bank_negatives, args.embed_dim, args.bank_samples,
            args.bank_repeats, 1, args.device)
        bank['rows'][0]['name'] += (
            ' (backward per block; the reference\'s single graph would hold '
            f'{bank["literal_graph_bytes"] / 2**30:.1f} GiB of gathered rows)')
        shapes = ' '.join(f'{k}={v}' for k, v in bank['shapes'].items())
        write('bank_loss.json', comparison_table(
            f'memory-bank loss, {shapes}, fp32, {args.device}, median of '
            f'{args.bank_repeats} after 1 warm-up; {note}', bank), bank)
        ok = ok and bank['ok']
    if not args.skip_train_step:
        train = run_train_benchmark(args.train_batch, args.train_repeats,
                                    args.meta_repeats, args.train_warmup,
                                    args.device)
        write('train_step.json', train_table(
            f'training step (preprocess + forward + backward + SGD), '
            f'ResNet-32 members, B={args.train_batch} random 32x32 images, '
            f'{args.device}; one interleaved run, median of '
            f'{train["repeats"]} (meta-step rows: of '
            f'{train["meta_repeats"]}) after {args.train_warmup} warm-up; '
            f'{note}', train), train)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
