"""Regime study: where on MNIST-5k a cohort method pays off, over seeds.

Trains every (method, labelled images per digit, ramp, seed) of a grid
with ``tools/train.py``, scores the checkpoint that the val split chose on
the test split with ``tools/test.py``, and writes, under ``--out-dir``:

- ``NAME.json``: every run (config, seed, commands, per-epoch val curve,
  test top-1 of each member and the ensemble, wall time), the summary
  table (mean and sample std over seeds), the goal check, provenance;
- ``NAME.md``: the table; ``NAME.png``: test top-1 against labels per
  digit, one line per method, error bars of one std.

A regime keeps the batch (10 digits x 2 images, the reference's m = 2)
and the epoch length (``--iters-per-epoch`` batches, however few images
there are), so the meta step, the ramp and the lr schedule see the same
number of steps at every data size. The baseline has no distillation term to ramp: it runs
once per data size and is every ramp's reference. Finished runs are
reused (``WORK_DIR/<run>/run.json``, shared by every study) unless
``--redo``.

    python tools/analysis_tools/regime_study.py --name screen \\
        --methods lmcl mcl dml baseline --labels-per-digit 20 50 100 \\
        --ramps off sigmoid --seeds 0 --epochs 8 --jobs 2
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

METHODS = {
    'lmcl': 'configs/lmcl/lmcl_resnet20x2_1xb100-15e_mnist5k.py',
    'mcl': 'configs/mcl/mcl_resnet20x2_1xb100-15e_mnist5k.py',
    'dml': 'configs/dml/dml_resnet20x2_1xb100-15e_mnist5k.py',
    'baseline': 'configs/baseline/baseline_resnet20x2_1xb100-15e_mnist5k.py',
    'one': 'configs/one/one_resnet20_1xb100-15e_mnist5k.py',
    'cl_ilr': 'configs/cl_ilr/cl-ilr_resnet20_1xb100-15e_mnist5k.py',
    'okddip': 'configs/okddip/okddip_resnet20_1xb100-15e_mnist5k.py',
    'kdcl': 'configs/kdcl/kdcl_resnet20x2_1xb100-15e_mnist5k.py',
    'pcl': 'configs/pcl/pcl_resnet20_1xb100-15e_mnist5k.py',
    'ffl': 'configs/ffl/ffl_resnet20_1xb100-15e_mnist5k.py',
}
RAMPS = ('off', 'sigmoid', 'linear')
# MNIST5k's train split holds 300 images per digit; a batch takes 2.
LABELS_RANGE = (2, 300)
IMAGES_PER_DIGIT_IN_BATCH = 2
# every cohort has members 0 and 1; the zoo's have up to 4 (member_keys)
MEMBERS = ('member0/accuracy/top1', 'member1/accuracy/top1')
MEMBER_KEY = re.compile(r'^member\d+/accuracy/top1$')
ENSEMBLE = 'ensemble/accuracy/top1'
# The references ramp over the first 80 of 300 epochs.
RAMP_FRACTION = 80 / 300


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--name', required=True, help='name of the outputs')
    parser.add_argument('--methods', nargs='+', default=list(METHODS))
    parser.add_argument(
        '--labels-per-digit', nargs='+', type=int, default=[20, 50, 100])
    parser.add_argument('--ramps', nargs='+', default=['off', 'sigmoid'])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=8)
    parser.add_argument('--iters-per-epoch', type=int, default=25)
    parser.add_argument('--lr', type=float, default=0.1)
    parser.add_argument(
        '--jobs', type=int, default=1,
        help='runs at once')
    parser.add_argument(
        '--threads', type=int, default=1,
        help="intra-op threads of each run (default 1, as tools/run_demo.py: "
        'CPU results depend on the thread count)')
    parser.add_argument(
        '--work-dir', default=osp.join(ROOT, 'work_dirs', 'regime_study'))
    parser.add_argument(
        '--out-dir', default=osp.join(ROOT, 'results', 'regime_study'))
    parser.add_argument('--redo', action='store_true')
    args = parser.parse_args(argv)
    check_grid(args)
    return args


def check_grid(args: argparse.Namespace) -> None:
    """Refuse a grid naming an unknown method, ramp or data size."""
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        raise SystemExit(f'regime_study: unknown method(s) {unknown} in '
                         f'--methods; choose from {sorted(METHODS)}.')
    unknown = sorted(set(args.ramps) - set(RAMPS))
    if unknown:
        raise SystemExit(f'regime_study: unknown ramp(s) {unknown} in '
                         f'--ramps; choose from {list(RAMPS)}.')
    low, high = LABELS_RANGE
    bad = [n for n in args.labels_per_digit if not low <= n <= high]
    if bad:
        raise SystemExit(
            f'regime_study: --labels-per-digit {bad} is not a data size of '
            f'MNIST-5k: its train split has {high} images per digit and a '
            f'batch takes {low} of each, so give sizes in {low}..{high}.')
    if (args.epochs < 2 or args.iters_per_epoch < 1 or args.jobs < 1
            or args.threads < 1):
        raise SystemExit('regime_study: --epochs must be >= 2, '
                         '--iters-per-epoch, --jobs and --threads >= 1.')


def regime_config(method: str, labels_per_digit: int, ramp: str,
                  epochs: int, iters_per_epoch: int = 10, lr: float = 0.1,
                  seed: int = 0):
    """The config of one run: the method's MNIST-5k config in a regime.

    Warm-up over the first ``epochs // 15`` epochs (at least one), then
    cosine to 0, the paper's SGD; the ramp, if any, over the first 80/300
    of the iterations for every distillation term.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, METHODS[method]))
    warmup = max(1, epochs // 15)
    cfg.train_dataloader.dataset.num_per_class = labels_per_digit
    cfg.train_dataloader.batch_size = 10 * IMAGES_PER_DIGIT_IN_BATCH
    cfg.train_dataloader.batch_sampler.num_per_class = \
        IMAGES_PER_DIGIT_IN_BATCH
    cfg.train_dataloader.batch_sampler.num_batches = iters_per_epoch
    cfg.train_cfg.max_epochs = epochs
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
             end=warmup, convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup,
             end=epochs, T_max=epochs - warmup),
    ]
    for wrapper in cfg.optim_wrapper.values():
        if isinstance(wrapper, dict) and 'optimizer' in wrapper:
            wrapper.optimizer.lr = lr
    cfg.auto_scale_lr = dict(base_batch_size=cfg.train_dataloader.batch_size)
    if ramp == 'off':
        cfg.model.pop('loss_ramp', None)  # the zoo configs' own, too
    else:
        cfg.model.loss_ramp = dict(
            type='LossWeightRamp', shape=ramp,
            length=max(1, round(RAMP_FRACTION * epochs * iters_per_epoch)),
            by_epoch=False)
    cfg.randomness.seed = seed
    return cfg


def run_key(args: argparse.Namespace, method: str, labels: int, ramp: str,
            seed: int) -> str:
    """A run's folder name: everything that sets its config."""
    return (f'{method}_n{labels}_{ramp}_{args.epochs}x{args.iters_per_epoch}'
            f'_lr{args.lr:g}_seed{seed}')


def _call(cmd: List[str], log: str, threads: int) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    with open(log, 'a') as f:
        f.write('$ ' + ' '.join(cmd) + '\n')
        f.flush()
        result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f,
                                stderr=subprocess.STDOUT)
    if result.returncode:
        raise RuntimeError(f'regime_study: `{" ".join(cmd)}` failed '
                           f'(exit {result.returncode}); see {log}.')


def member_keys(metrics: dict) -> List[str]:
    """``member{m}/accuracy/top1`` of every member in ``metrics``."""
    return sorted((k for k in metrics if MEMBER_KEY.match(k)),
                  key=lambda k: int(k[len('member'):k.index('/')]))


def val_curve(run_dir: str) -> List[dict]:
    """Per-epoch val top-1 of every member and the ensemble."""
    logs = sorted(glob.glob(osp.join(run_dir, '2*', 'vis_data',
                                     'scalars.json')))
    curve = []
    for log in logs[-1:]:
        with open(log) as f:
            for line in f:
                record = json.loads(line)
                if ENSEMBLE in record:
                    curve.append({'epoch': record['step'], **{
                        k: record[k]
                        for k in member_keys(record) + [ENSEMBLE]}})
    return curve


def train_then_test(run_dir: str, cfg, threads: int, tag: str,
                    need_best: bool) -> dict:
    """``tools/train.py`` then ``tools/test.py`` of ``cfg`` in a fresh
    ``run_dir``, on the checkpoint the val split chose, or (``need_best``
    False) the last one where the config has no val split.

    Returns:
        dict: ``config`` (its path), ``commands``, ``checkpoint`` and the
        test ``metrics`` in the evaluator's order.
    """
    # a run cut short (or redone) leaves checkpoints and logs that the
    # glob for best_*.pth would take for this run's
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    config = osp.join(run_dir, 'config.py')
    cfg.dump(config)
    log = osp.join(run_dir, 'log.txt')
    train = [sys.executable, 'tools/train.py', config, '--work-dir', run_dir]
    _call(train, log, threads)
    best = sorted(glob.glob(osp.join(run_dir, 'best_*.pth')))
    if best:
        checkpoint = best[-1]
    elif need_best:
        raise RuntimeError(f'{tag}: {run_dir} has no best_*.pth.')
    else:
        with open(osp.join(run_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
    test_dir = osp.join(run_dir, 'test')
    test = [sys.executable, 'tools/test.py', config, checkpoint,
            '--work-dir', test_dir]
    _call(test, log, threads)
    with open(sorted(glob.glob(osp.join(test_dir, '*', '*.json')))[-1]) as f:
        metrics = json.load(f)
    return dict(config=config, checkpoint=checkpoint, metrics=metrics,
                commands=[' '.join(train[1:]), ' '.join(test[1:])])


def run_device() -> str:
    """What ``tools/train.py`` trains on here: the GPU's name or cpu."""
    import torch
    return (torch.cuda.get_device_name(0)
            if torch.cuda.is_available() else 'cpu')


def train_and_test(args: argparse.Namespace, method: str, labels: int,
                   ramp: str, seed: int, threads: int) -> dict:
    """One run of the grid (reused if finished); its record."""
    run_dir = osp.join(args.work_dir, run_key(args, method, labels, ramp,
                                              seed))
    record_file = osp.join(run_dir, 'run.json')
    if osp.isfile(record_file) and not args.redo:
        with open(record_file) as f:
            return json.load(f)
    start = time.time()
    cfg = regime_config(method, labels, ramp, args.epochs,
                        args.iters_per_epoch, args.lr, seed)
    trained = train_then_test(run_dir, cfg, threads, 'regime_study',
                              need_best=True)
    config, metrics = trained['config'], trained['metrics']
    best = [trained['checkpoint']]
    train, test = trained['commands']
    curve = val_curve(run_dir)
    record = dict(
        method=method, labels_per_digit=labels, ramp=ramp, seed=seed,
        epochs=args.epochs, iters_per_epoch=args.iters_per_epoch,
        lr=args.lr, config=osp.relpath(config, ROOT),
        base_config=METHODS[method],
        commands=[train, test],
        best_checkpoint=osp.basename(best[-1]),
        test={k: metrics[k] for k in member_keys(metrics) + [ENSEMBLE]},
        val_curve=curve,
        # the worst final classifier after the first epoch (chance: 10)
        min_member_val_after_epoch1=min(
            (min(p[k] for k in member_keys(p)) for p in curve
             if p['epoch'] >= 2),
            default=None),
        device=run_device(),
        wall_s=round(time.time() - start, 1))
    with open(record_file, 'w') as f:
        json.dump(record, f, indent=1)
    return record


def run_grid(runs: list, jobs: int, train: Callable[[tuple], dict],
             describe: Callable[[tuple, dict], str], tag: str) -> List[dict]:
    """``train(run)`` of every run, ``jobs`` at a time, printing
    ``describe(run, record)`` as each finishes; the records in run order."""
    done = []

    def one(run):
        record = train(run)
        done.append(record)
        print(f'[{tag}] {len(done)}/{len(runs)} {describe(run, record)} '
              f'({record["wall_s"]:.0f} s)', flush=True)
        return record

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, runs))


def grid(args: argparse.Namespace) -> List[Tuple[str, int, str, int]]:
    """(method, labels, ramp, seed) of every run; the baseline once."""
    runs = []
    for labels in args.labels_per_digit:
        for method in args.methods:
            ramps = ['off'] if method == 'baseline' else args.ramps
            runs += [(method, labels, ramp, seed) for ramp in ramps
                     for seed in args.seeds]
    return runs


def mean_std(values: List[float]) -> Tuple[float, float]:
    spread = statistics.stdev(values) if len(values) > 1 else 0.
    return statistics.mean(values), spread


def summarise(runs: List[dict]) -> List[dict]:
    """Mean and sample std over seeds of each (method, labels, ramp)."""
    groups: Dict[tuple, List[dict]] = {}
    for r in runs:
        groups.setdefault(
            (r['method'], r['labels_per_digit'], r['ramp']), []).append(r)
    rows = []
    for (method, labels, ramp), group in sorted(groups.items()):
        row = dict(method=method, labels_per_digit=labels, ramp=ramp,
                   seeds=[r['seed'] for r in group])
        row['num_members'] = len(member_keys(group[0]['test']))
        for name, keys in (('member0', MEMBERS[:1]), ('member1', MEMBERS[1:]),
                           ('members', None), ('ensemble', (ENSEMBLE, ))):
            row[name] = mean_std([
                statistics.mean(r['test'][k]
                                for k in keys or member_keys(r['test']))
                for r in group])
        worst = [r['min_member_val_after_epoch1'] for r in group
                 if r['min_member_val_after_epoch1'] is not None]
        row['min_member_val_after_epoch1'] = min(worst, default=None)
        rows.append(row)
    return rows


def goal_check(rows: List[dict]) -> List[dict]:
    """Issue 9's goal per (labels, ramp): L-MCL's members beat the
    baseline's by >= 1.0 point and by more than either spread; DML and MCL
    beat the baseline; no final classifier at chance after epoch 1."""
    base = {r['labels_per_digit']: r for r in rows
            if r['method'] == 'baseline'}
    checks = []
    for lmcl in (r for r in rows if r['method'] == 'lmcl'):
        labels, ramp = lmcl['labels_per_digit'], lmcl['ramp']
        if labels not in base:
            continue
        b_mean, b_std = base[labels]['members']
        l_mean, l_std = lmcl['members']
        others = {r['method']: r['members'][0] - b_mean for r in rows
                  if r['labels_per_digit'] == labels and r['ramp'] == ramp
                  and r['method'] in ('mcl', 'dml')}
        worst = [r['min_member_val_after_epoch1'] for r in rows
                 if r['labels_per_digit'] == labels and r['ramp'] in
                 (ramp, 'off') and r['min_member_val_after_epoch1'] is not None]
        delta = l_mean - b_mean
        checks.append(dict(
            labels_per_digit=labels, ramp=ramp, lmcl_minus_baseline=delta,
            spread=max(l_std, b_std), others_minus_baseline=others,
            lmcl_goal=delta >= 1.0 and delta > max(l_std, b_std),
            others_goal=bool(others) and all(d > 0 for d in others.values()),
            no_chance_after_epoch1=bool(worst) and min(worst) > 20.))
    return checks


def table(rows: List[dict], checks: List[dict], runs: List[dict],
          args) -> str:
    fmt = '{:.2f} ± {:.2f}'.format
    lines = [
        f'Test top-1 (%), mean ± sample std over seeds {args.seeds}; the val '
        f'split chose each checkpoint. MNIST-5k, ResNet-20 peers (N of '
        f'them; a shared trunk for ONE, CL-ILR, OKDDip, PCL, FFL), '
        f'{args.epochs} epochs of {args.iters_per_epoch} batches of 10 '
        f'digits x {IMAGES_PER_DIGIT_IN_BATCH}, '
        f'lr {args.lr}. Trained on: '
        f"{', '.join(sorted({r.get('device', 'cpu') for r in runs}))}.", '',
        '| method | N | labels/digit | ramp | member0 | member1 | '
        'members (mean of N) | ensemble | worst member val after ep. 1 |',
        '|---|---|---|---|---|---|---|---|---|'
    ]
    for r in rows:
        worst = r['min_member_val_after_epoch1']
        lines.append(
            f"| {r['method']} | {r['num_members']} | "
            f"{r['labels_per_digit']} | {r['ramp']} | "
            f"{fmt(*r['member0'])} | {fmt(*r['member1'])} | "
            f"{fmt(*r['members'])} | {fmt(*r['ensemble'])} | "
            f"{'-' if worst is None else f'{worst:.1f}'} |")
    lines += ['', '| labels/digit | ramp | L-MCL - baseline (members) | '
              'spread | L-MCL goal | MCL, DML - baseline | both > 0 | '
              'no member at chance after ep. 1 |', '|---|---|---|---|---|---|---|---|']
    for c in checks:
        others = ', '.join(f'{k} {v:+.2f}' for k, v in
                           sorted(c['others_minus_baseline'].items()))
        lines.append(
            f"| {c['labels_per_digit']} | {c['ramp']} | "
            f"{c['lmcl_minus_baseline']:+.2f} | {c['spread']:.2f} | "
            f"{'met' if c['lmcl_goal'] else 'not met'} | {others or '-'} | "
            f"{'yes' if c['others_goal'] else 'no'} | "
            f"{'yes' if c['no_chance_after_epoch1'] else 'no'} |")
    return '\n'.join(lines)


def plot(rows: List[dict], path: str, title: str) -> str:
    """Test top-1 of the members (mean of N) and of the ensemble: against
    the labels per digit, or, for one data size, as bars per method."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    sizes = sorted({r['labels_per_digit'] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, field in zip(axes, ('members', 'ensemble')):
        if len(sizes) == 1:
            names = [r['method'] if r['method'] == 'baseline'
                     else f"{r['method']}, ramp {r['ramp']}" for r in rows]
            ax.bar(range(len(rows)), [r[field][0] for r in rows],
                   yerr=[r[field][1] for r in rows], capsize=3,
                   color=['grey' if r['method'] == 'baseline' else 'C0'
                          for r in rows])
            for r in rows:
                if r['method'] == 'baseline':
                    ax.axhline(r[field][0], color='grey', linestyle='--',
                               linewidth=1)
            ax.set_xticks(range(len(rows)), names, fontsize=7, rotation=60,
                          ha='right')
            low = min(r[field][0] - r[field][1] for r in rows)
            ax.set_ylim(max(0., low - 2.), None)
            ax.set(title=f'{field} (test top-1), {sizes[0]} labels/digit')
        else:
            _plot_lines(ax, rows, field)
        ax.grid(alpha=0.3, axis='y')
    axes[0].set_ylabel('top-1 (%)')
    if len(sizes) > 1:
        axes[1].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(fig)
    return path


def _plot_lines(ax, rows: List[dict], field: str) -> None:
    """One line per (method, ramp) against the labels per digit."""
    import matplotlib
    lines: Dict[tuple, List[dict]] = {}
    for r in rows:
        lines.setdefault((r['method'], r['ramp']), []).append(r)
    for (method, ramp), points in sorted(lines.items()):
        points.sort(key=lambda r: r['labels_per_digit'])
        ax.errorbar([p['labels_per_digit'] for p in points],
                    [p[field][0] for p in points],
                    yerr=[p[field][1] for p in points],
                    marker='o', capsize=3,
                    linestyle='-' if ramp == 'off' else '--',
                    label=method if method == 'baseline'
                    else f'{method}, ramp {ramp}')
    ax.set(xlabel='labelled training images per digit',
           title=f'{field} (test top-1)', xscale='log')
    ax.set_xticks(sorted({r['labels_per_digit'] for r in rows}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    runs = grid(args)
    threads = args.threads
    print(f'[regime_study] {len(runs)} runs, {args.jobs} at a time, '
          f'{threads} thread(s) each', flush=True)

    def describe(run, record):
        test = record['test']
        return (f'{run_key(args, *run)}: test member0 {test[MEMBERS[0]]:.2f} '
                f'member1 {test[MEMBERS[1]]:.2f} ensemble '
                f'{test[ENSEMBLE]:.2f}')

    records = run_grid(runs, args.jobs,
                       lambda run: train_and_test(args, *run, threads),
                       describe, 'regime_study')
    rows = summarise(records)
    checks = goal_check(rows)
    text = table(rows, checks, records, args)
    print(text)
    from mmmcl.utils.provenance import write_result
    out = osp.join(args.out_dir, args.name)
    write_result(out + '.json', dict(
        grid=dict(methods=args.methods, labels_per_digit=args.labels_per_digit,
                  ramps=args.ramps, seeds=args.seeds, epochs=args.epochs,
                  iters_per_epoch=args.iters_per_epoch, lr=args.lr),
        summary=rows, goal_check=checks, table=text, runs=records),
        argv=[osp.abspath(__file__)] + (sys.argv[1:] if argv is None
                                        else argv))
    with open(out + '.md', 'w') as f:
        f.write(text + '\n')
    plot(rows, out + '.png', f'MNIST-5k regime study "{args.name}", '
         f'{args.epochs} epochs x {args.iters_per_epoch} batches, seeds '
         f'{args.seeds}')
    print(f'[regime_study] wrote {out}.json, .md, .png', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
