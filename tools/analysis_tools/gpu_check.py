"""Train every cohort kind on random 32x32 images, with and without AMP.

    python tools/analysis_tools/gpu_check.py [--iters 300] [--warmup 20]
        [--batch-size 128] [--amp-dtypes bfloat16 float16] [--kinds ...]
        [--out results/gpu_check.json]
    python tools/analysis_tools/gpu_check.py --device cpu --iters 2  # smoke

Each kind (a ResNet-32 alone, then the ResNet-32 pairs of the baseline,
DML, MCL, L-MCL with its meta step, and L-MCL with memory banks) is built
from its config under ``configs/`` and trained by ``model.train_step`` with
the optimizer wrapper of the config's ``optim_wrapper``: once in fp32 and
once per AMP dtype, made AMP as ``tools/train.py --amp`` does
(:func:`enable_amp` of that script) with the dtype set. No dataset is read:
a few random uint8 batches (B/2 classes x 2 images, as the balanced
sampler gives) are cycled. The meta step runs at the config's interval
(``--meta-interval`` overrides it), counted from iteration 0.

Per row: images/s over the timed iterations (meta steps included where
due), the median normal step (meta step not due) and its ratio to the
single network's in the same precision, the meta step's cost (median step
with it due minus the median normal step), peak memory
(``torch.cuda.max_memory_allocated``) and the loss of the first and last
iteration. A row that fails is reported with its error; the others run.
The table and the rows are written with their provenance to ``--out``.

Exit code: 2 without CUDA (unless ``--device cpu``), 1 if a row failed or
its loss is not finite, else 0. Imports neither mmdet, mmseg nor mmcv.ops.
"""
import argparse
import importlib.util
import math
import os.path as osp
import statistics
import sys
import time
import traceback
from typing import Callable, List, Optional, Tuple

import torch
from mmengine import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.registry import MODELS
from mmmcl.utils.provenance import write_result
from mmmcl.utils.result_table import machine_note, markdown_table

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'single': 'lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py',
    'baseline': 'baseline/baseline_resnet32x2_1xb128-300e_cifar100.py',
    'dml': 'dml/dml_resnet32x2_1xb128-300e_cifar100.py',
    'mcl': 'mcl/mcl_resnet32x2_1xb128-300e_cifar100.py',
    'lmcl': 'lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py',
    'lmcl-bank': 'lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py',
}
MEMBER = 'resnet32'  # the member of the configs, built alone for 'single'
NO_CUDA_EXIT = 2


def load_enable_amp() -> Callable[[Config], None]:
    """``enable_amp(cfg)`` of ``tools/train.py``: what ``--amp`` does."""
    path = osp.join(ROOT, 'tools', 'train.py')
    spec = importlib.util.spec_from_file_location('mmmcl_train_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.enable_amp


def kind_config(kind: str, args: argparse.Namespace) -> Tuple[dict, dict]:
    """``(model, optim_wrapper)`` configs of a kind.

    ``single``: the config's member alone with the cohort's SGD.
    ``lmcl-bank``: the L-MCL config with ``MemoryBankContrastLoss``
    (``--bank-samples`` rows, ``--bank-negatives`` negatives per sample,
    the ImageNet recipe's tau and weights).
    """
    cfg = Config.fromfile(osp.join(ROOT, 'configs', CONFIGS[kind]))
    if kind == 'single':
        model = cfg[MEMBER]
        model.head.num_classes = cfg.data_preprocessor.num_classes
        model.data_preprocessor = cfg.data_preprocessor
        return model, dict(type='OptimWrapper',
                           optimizer=cfg.optim_wrapper.cohort.optimizer)
    model = cfg.model
    model.setdefault('data_preprocessor', cfg.data_preprocessor)
    if kind == 'lmcl-bank':
        model.contrast_loss = dict(
            type='MemoryBankContrastLoss', num_samples=args.bank_samples,
            feat_dim=model.embed_dim, num_members=len(model.members),
            tau=0.07, kd_temperature=3.0, momentum=0.5)
        model.loss_weights = dict(vcl=0.01, soft_vcl=1.0, icl=0.01,
                                  soft_icl=1.0)
    if model.get('meta') and args.meta_interval:
        model.meta.interval = args.meta_interval
    return model, cfg.optim_wrapper


def amp_optim_config(optim_cfg: dict, dtype: str) -> dict:
    """``optim_cfg`` as ``tools/train.py --amp`` makes it, autocasting to
    ``dtype`` (``'float16'`` or ``'bfloat16'``)."""
    cfg = Config(dict(optim_wrapper=optim_cfg))
    load_enable_amp()(cfg)
    wrappers = [cfg.optim_wrapper] + [
        v for v in cfg.optim_wrapper.values() if isinstance(v, dict)]
    for wrapper in wrappers:
        if wrapper.get('type') == 'AmpOptimWrapper':
            wrapper['dtype'] = dtype
    return cfg.optim_wrapper


def make_batches(args: argparse.Namespace, kind: str) -> List[dict]:
    """``--pool`` random batches as the dataloader gives them; with bank
    rows ``contrast_idx = [self, positive, K negatives]`` for lmcl-bank."""
    gen = torch.Generator().manual_seed(0)
    b = args.batch_size
    batches = []
    for n in range(args.pool):
        labels = (torch.arange(b // 2) + n * b // 2) % 100
        labels = labels.repeat_interleave(2)
        samples = [DataSample().set_gt_label(int(y)) for y in labels]
        if kind == 'lmcl-bank':
            idx = torch.randint(0, args.bank_samples,
                                (b, args.bank_negatives + 2), generator=gen)
            for sample, row in zip(samples, idx):
                sample.set_field(row, 'contrast_idx', field_type='data')
        batches.append(dict(
            inputs=list(torch.randint(0, 256, (b, 3, 32, 32),
                                      dtype=torch.uint8, generator=gen)),
            data_samples=samples))
    return batches


def train_row(kind: str, amp_dtype: Optional[str],
              args: argparse.Namespace) -> dict:
    """Train one kind in one precision; the row's figures."""
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    model_cfg, optim_cfg = kind_config(kind, args)
    if amp_dtype is not None:
        optim_cfg = amp_optim_config(optim_cfg, amp_dtype)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(model_cfg).to(device)
        optim_wrapper = build_optim_wrapper(model, optim_cfg)
    model.train()
    batches = make_batches(args, kind)
    meta = getattr(model, 'meta_step', None)
    sync = torch.cuda.synchronize if cuda else lambda: None
    times, due, losses = [], [], []
    for i in range(args.iters):
        if hasattr(model, 'set_train_progress'):
            model.set_train_progress(batch_idx=i, epoch=0, iteration=i)
        sync()
        start = time.perf_counter()
        log_vars = model.train_step(batches[i % len(batches)], optim_wrapper)
        sync()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            due.append(meta is not None and i % meta.interval == 0)
        if i in (0, args.iters - 1):
            losses.append(float(log_vars['loss'].detach()))
    normal = [t for t, d in zip(times, due) if not d]
    with_meta = [t for t, d in zip(times, due) if d]
    median = statistics.median
    return dict(
        img_per_s=args.batch_size * len(times) / sum(times),
        normal_step_s=median(normal) if normal else None,
        meta_step_s=median(with_meta) - median(normal)
        if with_meta and normal else None,
        meta_steps_timed=len(with_meta),
        steps_timed=len(times),
        peak_mib=torch.cuda.max_memory_allocated(device) / 2**20
        if cuda else None,
        loss_first=losses[0],
        loss_last=losses[-1],
        finite=all(math.isfinite(x) for x in losses))


def run_rows(args: argparse.Namespace,
             on_row: Callable[[List[dict]], None]) -> List[dict]:
    """Every (kind, precision) row; a failure is recorded, not raised.

    ``on_row(rows)`` is called with the rows so far after each one, so
    that a run cut short still leaves what it measured.
    """
    logger = MMLogger.get_current_instance()
    rows = []
    for precision in [None] + args.amp_dtypes:
        for kind in args.kinds:
            row = dict(kind=kind, config=f'configs/{CONFIGS[kind]}',
                       precision='fp32' if precision is None else
                       f'AMP {precision}', error=None)
            try:
                row.update(train_row(kind, precision, args))
            except Exception as e:  # noqa: B902 -- report it, go on
                first = (str(e).strip().split('\n') or [''])[0]
                row['error'] = f'{type(e).__name__}: {first}'[:300]
                logger.error(f'gpu_check {kind} {row["precision"]} failed:\n'
                             + traceback.format_exc())
            finally:
                if args.device == 'cuda':
                    torch.cuda.empty_cache()
            rows.append(row)
            logger.info(f'gpu_check {row}')
            on_row(with_ratios(rows))
    return rows


def with_ratios(rows: List[dict]) -> List[dict]:
    """Set each row's ``x_single``: its normal step over the single
    network's in the same precision (None until that one is measured)."""
    singles = {r['precision']: r.get('normal_step_s') for r in rows
               if r['kind'] == 'single' and r['error'] is None}
    for row in rows:
        single = singles.get(row['precision'])
        row['x_single'] = row['normal_step_s'] / single \
            if single and row.get('normal_step_s') else None
    return rows


def table(rows: List[dict], args: argparse.Namespace) -> str:
    """The markdown table of :func:`run_rows`."""

    def num(value: Optional[float], fmt: str) -> str:
        return '-' if value is None else format(value, fmt)

    lines = []
    for r in rows:
        if r['error'] is not None:
            lines.append([r['kind'], r['precision']] + ['-'] * 6 +
                         [f"FAILED: {r['error']}"])
            continue
        lines.append([
            r['kind'], r['precision'], num(r['img_per_s'], '.0f'),
            num(r['normal_step_s'], '.4f'), num(r['x_single'], '.2f'),
            num(r['meta_step_s'], '.3f'), num(r['peak_mib'], '.0f'),
            f"{r['loss_first']:.3f} -> {r['loss_last']:.3f}",
            'ok' if r['finite'] else 'loss not finite'])
    title = (f'{args.device} check, ResNet-32 (pairs), B={args.batch_size} '
             f'random 32x32 images, {args.iters} iterations ({args.warmup} '
             f'untimed); {machine_note(args.device)}')
    return markdown_table(
        [title, 'precision', 'img/s (all steps)', 's/step (no meta)',
         'x single', 'meta step s', 'peak MiB', 'loss first -> last',
         'status'], lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda',
                        help='cpu: a smoke test of the same code')
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--warmup', type=int, default=20,
                        help='untimed first iterations (at most iters - 1)')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--kinds', nargs='+', choices=list(CONFIGS),
                        default=list(CONFIGS))
    parser.add_argument(
        '--amp-dtypes', nargs='*', choices=['bfloat16', 'float16'],
        help='AMP rows (none: fp32 only); default: bfloat16 where the GPU '
        'has it, and float16; on CPU none')
    parser.add_argument('--meta-interval', type=int,
                        help="the meta step's interval (default: config's)")
    parser.add_argument('--bank-samples', type=int, default=50_000)
    parser.add_argument('--bank-negatives', type=int, default=4096)
    parser.add_argument('--pool', type=int, default=4,
                        help='random batches cycled through')
    parser.add_argument('--threads', type=int,
                        help='torch.set_num_threads (default: unchanged)')
    parser.add_argument(
        '--out', help='JSON result (default: results/gpu_check.json, on '
        'CPU results/gpu_check_cpu.json)')
    args = parser.parse_args(argv)
    if args.batch_size < 2 or args.batch_size % 2:
        parser.error(f'--batch-size must be even (B/2 classes x 2), got '
                     f'{args.batch_size}')
    if args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    args.warmup = max(0, min(args.warmup, args.iters - 1))
    if args.out is None:
        name = 'gpu_check.json' if args.device == 'cuda' else \
            'gpu_check_cpu.json'
        args.out = osp.join('results', name)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('gpu_check: no CUDA device (torch.cuda.is_available() is '
              'False); run it on a GPU machine, or pass `--device cpu '
              '--iters 2` for a smoke test of the same code on CPU.',
              file=sys.stderr)
        return NO_CUDA_EXIT
    if args.amp_dtypes is None:
        args.amp_dtypes = [] if args.device == 'cpu' else (
            ['bfloat16', 'float16']
            if torch.cuda.is_bf16_supported() else ['float16'])
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == 'cuda':
        torch.backends.cudnn.benchmark = True
    command = [__file__] + list(sys.argv[1:] if argv is None else argv)
    settings = {k: v for k, v in vars(args).items() if k != 'out'}
    planned = len(args.kinds) * (1 + len(args.amp_dtypes))

    def save(rows: List[dict]) -> str:
        return write_result(args.out, dict(
            table=table(rows, args), rows=rows, settings=settings,
            complete=len(rows) == planned), argv=command)

    rows = run_rows(args, save)
    path = save(rows)
    print(f'{table(rows, args)}\n-> {path}')
    failed = [r for r in rows if r['error'] or not r.get('finite', False)]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
