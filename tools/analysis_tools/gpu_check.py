"""Train every method of the zoo eager and compiled, time the CIFAR data
pipeline, and project 300 CIFAR-100 epochs per method.

    python tools/analysis_tools/gpu_check.py            # CUDA, about 8 min
        [--kinds ...] [--modes eager compiled] [--amp-dtypes bfloat16]
        [--memory-formats contiguous channels-last] [--compile-mode MODE]
        [--iters 120] [--warmup 10] [--batch-size 128] [--time-budget 420]
        [--data-workers 0 4 16] [--out results/gpu_check.json]
    python tools/analysis_tools/gpu_check.py --device cpu  # the CPU rows
        # (B=32, 8 iterations; compiling takes minutes a kind on a CPU)
    python tools/analysis_tools/gpu_check.py --device cpu --quick  # smoke

Training rows. Each kind (a ResNet-32 alone, then the CIFAR-100 ResNet-32
configs of the baseline, DML, MCL, L-MCL, ONE, CL-ILR, OKDDip, KDCL, PCL,
FFL, and on request L-MCL with memory banks) is built from its config under
``configs/`` and trained by ``model.train_step`` with the optimizer wrapper
of the config's ``optim_wrapper``, once per variant: eager, or compiled as
MMEngine's ``compile=True`` does (``torch.compile(model.train_step)``), in
fp32 or AMP (made as ``tools/train.py --amp`` makes it, :func:`enable_amp`
of that script, with the dtype set), with contiguous or channels-last
weights. A few random uint8 batches as the config's dataloader gives them
(B/2 classes x 2 images; KDCL and PCL: a list of V views) are cycled. The
meta step runs at the config's interval (``--meta-interval`` overrides it),
counted from iteration 0, eagerly inside a compiled step.

Per row: the median normal step (meta step not due) and its img/s, its
ratio to the single network's of the same variant (``x single``) and, for
a compiled row, the eager row's step over it (``x eager``); the meta step
timed around ``meta_update`` (median s, in normal steps, and on CUDA its
peak memory above what was allocated when it started); the whole row's
peak memory (``torch.cuda.max_memory_allocated``); the untimed warm-up
iterations' time (compiling, for a compiled row) and the graphs, graph
breaks and recompilations in the timed iterations that Dynamo counted; the
loss of the first and last iteration; and the projected 300-epoch CIFAR-100
time: 300 x (ceil(50,000 / B) normal steps + the meta steps of the config's
interval) on the step alone, and bound by the data pipeline measured below
at the config's ``num_workers`` (each epoch at least 50,000 images at its
img/s, the workers running beside the device).

Data rows. Each distinct training pipeline of the kinds (mmpretrain's
RandomCrop with padding and RandomFlip; MultiView for KDCL and PCL), and
the packing that is left when the crop and flip run on the device
(``cifar100_bs128_device_aug.py``), runs on 50,000 random uint8 32x32
images held in memory, as mmpretrain's CIFAR gives them, through a
``DataLoader`` with the config's collate and each of ``--data-workers``
workers: images/s after the batches prefetched at the start. Then each
``DEVICE_PIPELINES`` entry, a data preprocessor on the device (the
configs' normalisation; ``mmmcl.RandomCropFlip``'s crop, flip and
normalisation): images/s, the host-to-device copy included.

Rows run in order (data, then per variant every kind); a row that fails is
reported with its error, the others run; rows that would start after
``--time-budget`` seconds are listed as skipped. The tables and rows are
written with their provenance to ``--out`` after every row.

Exit code: 2 without CUDA (unless ``--device cpu``), 1 if a row failed or
its loss is not finite, else 0. Imports neither mmdet, mmseg nor mmcv.ops.
"""
import argparse
import importlib.util
import json
import math
import os
import os.path as osp
import statistics
import sys
import time
import traceback
from functools import partial
from typing import Callable, List, NamedTuple, Optional, Tuple

import torch
from mmengine import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import FUNCTIONS, DefaultScope
from mmpretrain.structures import DataSample
from torch._dynamo.utils import counters
from torch.utils.data import DataLoader, RandomSampler

from mmmcl.models.distillers import MetaModuleModel
from mmmcl.registry import MODELS
from mmmcl.testing import train_progress
from mmmcl.utils.provenance import write_result
from mmmcl.utils.result_table import machine_note, markdown_table

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_augment import InMemoryImages  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'single': 'lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py',
    'baseline': 'baseline/baseline_resnet32x2_1xb128-300e_cifar100.py',
    'dml': 'dml/dml_resnet32x2_1xb128-300e_cifar100.py',
    'mcl': 'mcl/mcl_resnet32x2_1xb128-300e_cifar100.py',
    'lmcl': 'lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py',
    'one': 'one/one_resnet32_1xb128-300e_cifar100.py',
    'cl-ilr': 'cl_ilr/cl-ilr_resnet32_1xb128-300e_cifar100.py',
    'okddip': 'okddip/okddip_resnet32_1xb128-300e_cifar100.py',
    'kdcl': 'kdcl/kdcl_resnet32x2_1xb128-300e_cifar100.py',
    'pcl': 'pcl/pcl_resnet32_1xb128-300e_cifar100.py',
    'ffl': 'ffl/ffl_resnet32_1xb128-300e_cifar100.py',
    'lmcl-bank': 'lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py',
}
DEFAULT_KINDS = [k for k in CONFIGS if k != 'lmcl-bank']
MEMBER = 'resnet32'  # the member of the configs, built alone for 'single'
CIFAR_IMAGES, EPOCHS = 50_000, 300  # CIFAR-100's training split
NO_CUDA_EXIT = 2
# iterations, warm-up, batch, pool, meta interval, time budget s, data
# images, data batches: CUDA fits about 8 minutes on an H100; --quick is a
# smoke test of the same code
PRESETS = dict(
    cuda=dict(iters=120, warmup=10, batch_size=128, pool=4,
              meta_interval=None, time_budget=420., data_images=CIFAR_IMAGES,
              data_batches=60, bank_samples=CIFAR_IMAGES,
              bank_negatives=4096),
    cpu=dict(iters=8, warmup=2, batch_size=32, pool=2, meta_interval=3,
             time_budget=None, data_images=5000, data_batches=20,
             bank_samples=5000, bank_negatives=1024),
    quick=dict(iters=4, warmup=2, batch_size=4, pool=2, meta_interval=2,
               time_budget=None, data_images=64, data_batches=2,
               bank_samples=64, bank_negatives=8))


class Variant(NamedTuple):
    """How a kind is trained."""
    amp: Optional[str] = None  #: AMP dtype, None for fp32
    channels_last: bool = False
    compiled: bool = False

    @property
    def precision(self) -> str:
        fmt = ' channels-last' if self.channels_last else ''
        return ('fp32' if self.amp is None else f'AMP {self.amp}') + fmt

    @property
    def mode(self) -> str:
        return 'compiled' if self.compiled else 'eager'


# ----------------------------------------------------------------- configs
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
        contrast = model.terms.contrast
        contrast.contrast_loss = dict(
            type='MemoryBankContrastLoss', num_samples=args.bank_samples,
            feat_dim=contrast.embed_dim,
            num_members=len(model.peers.members), tau=0.07,
            kd_temperature=3.0, momentum=0.5)
        contrast.loss_weights = dict(vcl=0.01, soft_vcl=1.0, icl=0.01,
                                     soft_icl=1.0)
    if model.get('meta') and args.meta_interval:
        model.meta.interval = args.meta_interval
    return model, cfg.optim_wrapper


def config_facts(kind: str) -> dict:
    """What the projection reads from the kind's config: its views per
    image, the meta step's interval, the dataloader's workers."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', CONFIGS[kind]))
    meta = cfg.model.get('meta') if kind != 'single' else None
    return dict(views=num_views(cfg.train_dataloader.dataset.pipeline),
                meta_interval=meta.get('interval', 50) if meta else None,
                num_workers=cfg.train_dataloader.get('num_workers', 0))


def num_views(pipeline: List[dict]) -> int:
    """V of an mmpretrain ``MultiView`` in the pipeline, else 0."""
    return next((t['num_views'] for t in pipeline
                 if t['type'] == 'mmpretrain.MultiView'), 0)


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


def make_batches(args: argparse.Namespace, kind: str,
                 views: int) -> List[dict]:
    """``--pool`` random batches as the dataloader gives them: B uint8
    images (``pseudo_collate``) or, with V views, V stacked (B, 3, 32, 32)
    tensors (``default_collate``); with bank rows ``contrast_idx = [self,
    positive, K negatives]`` for lmcl-bank."""
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
        images = torch.randint(0, 256, (max(views, 1), b, 3, 32, 32),
                               dtype=torch.uint8, generator=gen)
        batches.append(dict(inputs=list(images) if views else list(images[0]),
                            data_samples=samples))
    return batches


# ---------------------------------------------------------------- training
class MetaProbe:
    """Wraps ``model.meta_update``: the wall time of each call and, on
    CUDA, its peak memory above what was allocated when it started. Runs
    eagerly under ``torch.compile``, as the method it wraps."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.cuda = device.type == 'cuda'
        self.times: List[float] = []
        self.extra_mib: List[float] = []
        self.peak_before = 0  # the row's peak before the probe reset it
        meta_update = model.meta_update

        @torch.compiler.disable
        def probed(*args, **kwargs):
            if self.cuda:
                torch.cuda.synchronize()
                self.peak_before = max(self.peak_before,
                                       torch.cuda.max_memory_allocated())
                torch.cuda.reset_peak_memory_stats()
                start_bytes = torch.cuda.memory_allocated()
            start = time.perf_counter()
            out = meta_update(*args, **kwargs)
            if self.cuda:
                torch.cuda.synchronize()
                self.extra_mib.append(
                    (torch.cuda.max_memory_allocated() - start_bytes) / 2**20)
            self.times.append(time.perf_counter() - start)
            return out

        model.meta_update = probed


def train_row(kind: str, variant: Variant, args: argparse.Namespace) -> dict:
    """Train one kind in one variant; the row's figures."""
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    model_cfg, optim_cfg = kind_config(kind, args)
    if variant.amp is not None:
        optim_cfg = amp_optim_config(optim_cfg, variant.amp)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(model_cfg).to(device)
        if variant.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optim_wrapper = build_optim_wrapper(model, optim_cfg)
    model.train()
    batches = make_batches(args, kind, config_facts(kind)['views'])
    probe = MetaProbe(model, device) if isinstance(
        model, MetaModuleModel) and model.meta_module() is not None else None
    step = model.train_step
    if variant.compiled:
        torch._dynamo.reset()
        counters.clear()
        step = torch.compile(step, **args.compile_kwargs)
    sync = torch.cuda.synchronize if cuda else lambda: None
    times, due, losses, warmup_s, graphs_warm = [], [], [], 0., 0
    for i in range(args.iters):
        if i == args.warmup:
            graphs_warm = counters['stats']['unique_graphs']
        meta_calls = len(probe.times) if probe else 0
        sync()
        start = time.perf_counter()
        with train_progress(batch_idx=i):
            log_vars = step(batches[i % len(batches)], optim_wrapper)
        sync()
        elapsed = time.perf_counter() - start
        if i >= args.warmup:
            times.append(elapsed)
            due.append(probe is not None and len(probe.times) > meta_calls)
        else:
            warmup_s += elapsed
        if i in (0, args.iters - 1):
            losses.append(float(log_vars['loss'].detach()))
    normal = [t for t, d in zip(times, due) if not d]
    meta_times = probe.times[-sum(due):] if sum(due) else []
    normal_s = statistics.median(normal) if normal else None
    meta_s = statistics.median(meta_times) if meta_times else None
    peak = max(probe.peak_before if probe else 0,
               torch.cuda.max_memory_allocated(device)) if cuda else None
    row = dict(
        normal_step_s=normal_s,
        img_per_s=args.batch_size / normal_s if normal_s else None,
        meta_step_s=meta_s,
        meta_in_steps=meta_s / normal_s if meta_s and normal_s else None,
        meta_extra_mib=max(probe.extra_mib) if probe and cuda
        and probe.extra_mib else None,
        meta_steps_timed=len(meta_times),
        steps_timed=len(times),
        peak_mib=peak / 2**20 if cuda else None,
        warmup_s=warmup_s,
        loss_first=losses[0],
        loss_last=losses[-1],
        finite=all(math.isfinite(x) for x in losses))
    if variant.compiled:
        row.update(
            graphs=counters['stats']['unique_graphs'],
            graph_breaks=sum(counters['graph_break'].values()),
            recompiles_timed=counters['stats']['unique_graphs'] - graphs_warm)
        torch._dynamo.reset()
    return row


# -------------------------------------------------------------------- data
#: CIFAR-100's dataset bases: the CPU workers' crop and flip, and the same
#: moved into the data preprocessor (``mmmcl.RandomCropFlip``).
DATASETS = 'configs/_base_/datasets/cifar100_bs128{}.py'
CPU_AUG, DEVICE_AUG = DATASETS.format(''), DATASETS.format('_device_aug')
#: What runs on the device, name -> dataset base whose ``data_preprocessor``
#: is timed; another device-side path is one more entry.
DEVICE_PIPELINES = {
    'normalise (ClsDataPreprocessor)': CPU_AUG,
    'RandomCropFlip + normalise': DEVICE_AUG,
}


def time_cpu_pipeline(config: str, workers: int,
                      args: argparse.Namespace) -> float:
    """Images/s of a config's training pipeline and collate through a
    ``DataLoader`` of ``workers`` workers, after the batches the workers
    prefetched while starting (``2 * workers + 1``)."""
    loader_cfg = Config.fromfile(osp.join(ROOT, config)).train_dataloader
    with DefaultScope.overwrite_default_scope('mmmcl'):
        dataset = InMemoryImages(args.data_images,
                                 loader_cfg.dataset.pipeline)
    collate = dict(loader_cfg.get('collate_fn', dict(type='pseudo_collate')))
    collate_fn = partial(FUNCTIONS.get(collate.pop('type')), **collate)
    skip = 2 * workers + 1
    sampler = RandomSampler(
        dataset, replacement=True,
        num_samples=(skip + args.data_batches) * args.batch_size)
    loader = iter(DataLoader(dataset, batch_size=args.batch_size,
                             sampler=sampler, num_workers=workers,
                             collate_fn=collate_fn))
    for _ in range(skip):
        next(loader)
    start = time.perf_counter()
    for _ in range(args.data_batches):
        next(loader)
    elapsed = time.perf_counter() - start
    del loader  # its workers stop
    return args.data_batches * args.batch_size / elapsed


def time_device_pipeline(config: str, args: argparse.Namespace) -> float:
    """Images/s of a config's data preprocessor on ``--device``, training
    mode, on B uint8 32x32 images as ``pseudo_collate`` gives them (the
    host-to-device copy included)."""
    device = torch.device(args.device)
    cfg = Config.fromfile(osp.join(ROOT, config))
    with DefaultScope.overwrite_default_scope('mmmcl'):
        preprocessor = MODELS.build(cfg.data_preprocessor).to(device)
    batches = make_batches(args, 'single', 0)
    sync = torch.cuda.synchronize if device.type == 'cuda' else lambda: None
    for batch in batches:  # warm-up
        preprocessor(batch, True)
    sync()
    start = time.perf_counter()
    for n in range(args.data_batches):
        preprocessor(batches[n % len(batches)], True)
    sync()
    return args.data_batches * args.batch_size / (time.perf_counter() - start)


def data_rows(args: argparse.Namespace,
              on_row: Callable[[List[dict]], None]) -> List[dict]:
    """One row per distinct training pipeline (of ``--kinds``, and the CPU
    side of ``DEVICE_AUG``) and worker count, then one per
    ``DEVICE_PIPELINES`` entry. A failure is recorded, not raised;
    ``on_row(rows)`` after each, as :func:`run_rows`."""
    logger = MMLogger.get_current_instance()
    pipelines = {}  # pipeline -> (a config with it, the kinds that use it)
    sources = [(f'configs/{CONFIGS[k]}', k) for k in args.kinds]
    for config, kind in sources + [(DEVICE_AUG, None)]:
        pipeline = Config.fromfile(
            osp.join(ROOT, config)).train_dataloader.dataset.pipeline
        key = json.dumps(pipeline, sort_keys=True, default=str)
        kinds = pipelines.setdefault(key, (config, []))[1]
        kinds.extend([kind] if kind else [])
    jobs = [(dict(source='cpu workers', config=config, kinds=kinds,
                  pipeline=pipeline_name(json.loads(key)), workers=w),
             partial(time_cpu_pipeline, config, w, args))
            for key, (config, kinds) in pipelines.items()
            for w in args.data_workers]
    jobs += [(dict(source=f'{args.device} preprocessor', config=config,
                   kinds=[], pipeline=name, workers=None),
              partial(time_device_pipeline, config, args))
             for name, config in DEVICE_PIPELINES.items()]
    rows = []
    for row, measure in jobs:
        row.update(img_per_s=None, error=None)
        try:
            row['img_per_s'] = measure()
        except Exception as e:  # noqa: B902 -- report it, go on
            row['error'] = error_line(e)
            logger.error(f'gpu_check data {row} failed:\n'
                         + traceback.format_exc())
        rows.append(row)
        logger.info(f'gpu_check data {row}')
        on_row(rows)
    return rows


def pipeline_name(pipeline: List[dict]) -> str:
    """``RandomCrop(pad 4)+RandomFlip``, ``MultiView(2 x ...)``, or
    ``PackInputs`` for a pipeline that only packs."""
    names = []
    for t in pipeline:
        name = t['type'].split('.')[-1]
        if name == 'PackInputs':
            continue
        if name == 'MultiView':
            inner = pipeline_name([x for seq in t['transforms'] for x in seq])
            name = f"MultiView({t['num_views']} x {inner})"
        elif name == 'RandomCrop':
            mode = t.get('padding_mode', 'constant')
            name += f"(pad {t.get('padding')}" + (
                f' {mode})' if mode != 'constant' else ')')
        names.append(name)
    return '+'.join(names) or 'PackInputs'


# ------------------------------------------------------------ projections
def with_projections(rows: List[dict], data: List[dict],
                     args: argparse.Namespace) -> List[dict]:
    """Set each row's ratios (``x_single``, ``x_eager``) and its CIFAR-100
    epoch: ``img_per_s_amortised`` with the meta steps of the config's
    interval, the projected 300 epochs in hours on the step alone
    (``projected_300e_h``) and bound by the CPU pipeline at the config's
    workers (``projected_300e_data_h``)."""

    def key(r: dict, **change) -> tuple:
        r = dict(r, **change)
        return r['kind'], r['precision'], r['mode']

    steps = {key(r): r.get('normal_step_s') for r in rows}
    steps_per_epoch = math.ceil(CIFAR_IMAGES / args.batch_size)
    for row in rows:
        step = steps[key(row)]
        single = steps.get(key(row, kind='single'))
        eager = steps.get(key(row, mode='eager'))
        row.update(x_single=step / single if step and single else None,
                   x_eager=eager / step if step and eager
                   and row['mode'] != 'eager' else None,
                   img_per_s_amortised=None, projected_300e_h=None,
                   projected_300e_data_h=None)
        interval = row['meta_interval']
        if not step or (interval and row.get('meta_step_s') is None):
            continue
        meta_steps = math.ceil(steps_per_epoch / interval) if interval else 0
        epoch_s = steps_per_epoch * step + meta_steps * (
            row['meta_step_s'] or 0.)
        row['img_per_s_amortised'] = CIFAR_IMAGES / epoch_s
        row['projected_300e_h'] = EPOCHS * epoch_s / 3600
        pipeline = next((d for d in data if row['kind'] in d['kinds']
                         and d['workers'] == row['num_workers']
                         and d['img_per_s']), None)
        if pipeline is not None:
            data_s = CIFAR_IMAGES / pipeline['img_per_s']
            row['projected_300e_data_h'] = EPOCHS * max(epoch_s,
                                                        data_s) / 3600
    return rows


# ------------------------------------------------------------------- rows
def variants(args: argparse.Namespace) -> List[Variant]:
    """Per precision, memory format and mode, in the order they run."""
    return [Variant(amp, fmt == 'channels-last', mode == 'compiled')
            for amp in [None] + args.amp_dtypes
            for fmt in args.memory_formats for mode in args.modes]


def error_line(e: Exception) -> str:
    first = (str(e).strip().split('\n') or [''])[0]
    return f'{type(e).__name__}: {first}'[:300]


def run_rows(args: argparse.Namespace,
             on_row: Callable[[List[dict]], None],
             start: Optional[float] = None) -> List[dict]:
    """Every (variant, kind) row; a failure is recorded, not raised; a row
    due after ``args.time_budget`` seconds from ``start`` is skipped.

    ``on_row(rows)`` is called with the rows so far after each one, so
    that a run cut short still leaves what it measured.
    """
    logger = MMLogger.get_current_instance()
    start = time.perf_counter() if start is None else start
    rows = []
    for variant in variants(args):
        for kind in args.kinds:
            row = dict(kind=kind, config=f'configs/{CONFIGS[kind]}',
                       precision=variant.precision, mode=variant.mode,
                       **config_facts(kind), error=None, skipped=None)
            budget = args.time_budget
            if budget is not None and time.perf_counter() - start > budget:
                row['skipped'] = f'time budget ({budget:.0f} s)'
            else:
                try:
                    row.update(train_row(kind, variant, args))
                except Exception as e:  # noqa: B902 -- report it, go on
                    row['error'] = error_line(e)
                    logger.error(
                        f'gpu_check {kind} {variant} failed:\n'
                        + traceback.format_exc())
                finally:
                    if args.device == 'cuda':
                        torch.cuda.empty_cache()
                logger.info(f'gpu_check {row}')
            rows.append(row)
            on_row(rows)
    return rows


# ----------------------------------------------------------------- tables
def num(value: Optional[float], fmt: str) -> str:
    return '-' if value is None else format(value, fmt)


def table(rows: List[dict], args: argparse.Namespace) -> str:
    """The markdown table of :func:`run_rows` (after
    :func:`with_projections`)."""
    lines = []
    for r in rows:
        head = [r['kind'], r['precision'], r['mode']]
        if r['error'] is not None or r['skipped'] is not None:
            status = f"FAILED: {r['error']}" if r['error'] is not None \
                else f"skipped: {r['skipped']}"
            lines.append(head + ['-'] * 14 + [status])
            continue
        compiled = '-' if r['mode'] == 'eager' else \
            f"{r['graphs']}/{r['graph_breaks']}/{r['recompiles_timed']}"
        lines.append(head + [
            num(r['img_per_s'], '.0f'), num(r['img_per_s_amortised'], '.0f'),
            num(r['normal_step_s'], '.4f'), num(r['x_single'], '.2f'),
            num(r['x_eager'], '.2f'), num(r['meta_step_s'], '.3f'),
            num(r['meta_in_steps'], '.1f'), num(r['meta_extra_mib'], '.0f'),
            num(r['peak_mib'], '.0f'), num(r['warmup_s'], '.1f'), compiled,
            num(r['projected_300e_h'], '.2f'),
            num(r['projected_300e_data_h'], '.2f'),
            f"{r['loss_first']:.3f} -> {r['loss_last']:.3f}",
            'ok' if r['finite'] else 'loss not finite'])
    compiled = '' if 'compiled' not in args.modes else \
        ', compiled: torch.compile(model.train_step' + (
            f", mode='{args.compile_mode}')" if args.compile_mode else ')')
    title = (f'{args.device} check, CIFAR-100 ResNet-32 configs, '
             f'B={args.batch_size} random 32x32 images, {args.iters} '
             f'iterations ({args.warmup} untimed){compiled}; '
             f'{machine_note(args.device)}')
    return markdown_table(
        [title, 'precision', 'mode', 'img/s (normal step)',
         'img/s (with meta steps)', 's/step', 'x single', 'x eager',
         'meta step s', 'meta in steps', 'meta extra MiB', 'peak MiB',
         'warm-up s', 'graphs/breaks/recompiles', '300 epochs h',
         '300 epochs h, data', 'loss first -> last', 'status'], lines)


def data_table(rows: List[dict], args: argparse.Namespace) -> str:
    """The markdown table of :func:`data_rows`."""
    lines = [[r['source'], r['pipeline'], ', '.join(r['kinds']) or '-',
              num(r['workers'], 'd'), num(r['img_per_s'], '.0f'),
              'ok' if r['error'] is None else f"FAILED: {r['error']}"]
             for r in rows]
    title = (f'data pipeline, {args.data_images} in-memory uint8 32x32 '
             f'images, B={args.batch_size}, {args.data_batches} batches '
             f'timed; {machine_note(args.device)}')
    return markdown_table(
        [title, 'pipeline', 'kinds', 'workers', 'img/s', 'status'], lines)


# -------------------------------------------------------------------- main
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes: a smoke test of the same code')
    parser.add_argument('--kinds', nargs='+', choices=list(CONFIGS),
                        default=DEFAULT_KINDS)
    parser.add_argument('--modes', nargs='+', choices=['eager', 'compiled'],
                        default=['eager', 'compiled'])
    parser.add_argument(
        '--compile-mode', help="torch.compile's mode (default: its default,"
        " as MMEngine's compile=True)")
    parser.add_argument(
        '--amp-dtypes', nargs='*', choices=['bfloat16', 'float16'],
        help='AMP rows (none: fp32 only); default: bfloat16 where the GPU '
        'has it, else float16; on CPU none')
    parser.add_argument('--memory-formats', nargs='+',
                        choices=['contiguous', 'channels-last'],
                        default=['contiguous'])
    parser.add_argument('--iters', type=int)
    parser.add_argument('--warmup', type=int,
                        help='untimed first iterations (at most iters - 1)')
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--meta-interval', type=int,
                        help="the meta step's interval while timing (the "
                        "projection uses the config's)")
    parser.add_argument('--bank-samples', type=int)
    parser.add_argument('--bank-negatives', type=int)
    parser.add_argument('--pool', type=int,
                        help='random batches cycled through')
    parser.add_argument('--time-budget', type=float,
                        help='seconds after which no row starts (CUDA '
                        'default 420)')
    parser.add_argument('--data-workers', type=int, nargs='*',
                        help='DataLoader workers of the data rows (default: '
                        "0, the configs' 4 and the CPU count)")
    parser.add_argument('--data-images', type=int)
    parser.add_argument('--data-batches', type=int)
    parser.add_argument('--threads', type=int,
                        help='torch.set_num_threads (default: unchanged)')
    parser.add_argument(
        '--out', help='JSON result (default: results/gpu_check.json, on '
        'CPU results/gpu_check_cpu.json)')
    args = parser.parse_args(argv)
    preset = PRESETS['quick' if args.quick else args.device]
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.data_workers is None:
        args.data_workers = [0] if args.quick else sorted(
            {0, 4, len(os.sched_getaffinity(0))})
    if args.batch_size < 2 or args.batch_size % 2:
        parser.error(f'--batch-size must be even (B/2 classes x 2), got '
                     f'{args.batch_size}')
    if args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    args.warmup = max(0, min(args.warmup, args.iters - 1))
    if args.amp_dtypes is None:
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        args.amp_dtypes = [] if args.device == 'cpu' else (
            ['bfloat16'] if bf16 else ['float16'])
    args.compile_kwargs = {} if args.compile_mode is None else dict(
        mode=args.compile_mode)
    if args.out is None:
        name = 'gpu_check.json' if args.device == 'cuda' else \
            'gpu_check_cpu.json'
        args.out = osp.join('results', name)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    start = time.perf_counter()
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('gpu_check: no CUDA device (torch.cuda.is_available() is '
              'False); run it on a GPU machine, or pass `--device cpu '
              '--quick` for a smoke test of the same code on CPU.',
              file=sys.stderr)
        return NO_CUDA_EXIT
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == 'cuda':
        torch.backends.cudnn.benchmark = True
    command = [__file__] + list(sys.argv[1:] if argv is None else argv)
    settings = {k: v for k, v in vars(args).items() if k != 'out'}
    planned = len(args.kinds) * len(variants(args))

    def save(data: List[dict], rows: List[dict]) -> str:
        with_projections(rows, data, args)
        return write_result(args.out, dict(
            table=table(rows, args), data_table=data_table(data, args),
            rows=rows, data_rows=data, settings=settings,
            complete=len(rows) == planned and not any(
                r['skipped'] for r in rows)), argv=command)

    data = data_rows(args, lambda so_far: save(so_far, []))
    rows = run_rows(args, partial(save, data), start=start)
    path = save(data, rows)
    print(f'{data_table(data, args)}\n\n{table(rows, args)}\n-> {path}')
    failed = [r for r in rows if r['error'] or (
        r['skipped'] is None and not r.get('finite', False))]
    failed += [d for d in data if d['error']]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
