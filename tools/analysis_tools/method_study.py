"""Method study: the methods' configs on a dataset, over seeds, in one command.

    python tools/analysis_tools/method_study.py --name r32-cifar100 \\
        --dataset cifar100 --backbone resnet32 \\
        --methods baseline dml mcl lmcl one cl_ilr okddip kdcl pcl ffl \\
        --seeds 0 1 2 [--data-root data/cifar100] [--epochs 300] \\
        [--dataset-type UnverifiedCIFAR100] [--cfg-options KEY=VALUE ...]

For each method the config ``configs/<method>/*<backbone>*_<dataset>.py``
(exactly one must match: ``--backbone resnet32`` picks
``lmcl_resnet32x2_1xb128-300e_cifar100.py`` and
``one_resnet32_1xb128-300e_cifar100.py``; ``--dataset in1k`` the ImageNet
configs, whose data root is a folder of ``train/`` and ``val/`` class
folders), and for each seed: ``tools/train.py`` with the seed, the data root,
the epochs (the lr schedule, warm-up and loss ramps scaled to them) and the
options, then ``tools/test.py`` on the test split with the checkpoint the
val split chose, or the last one where the config has no val split (the
CIFAR-100 recipes). It records every member, the mean-softmax ensemble and
the method's reported classifier: the first metric of ``CohortAccuracy``
(a zoo model's named classifier, e.g. ``one/branch0`` or ``okddip/leader``,
else the ensemble). Writes, under ``--out-dir``: ``NAME.json`` (runs,
mean and sample std over seeds, provenance), ``NAME.md`` (the table) and
``NAME.png`` (the reported top-1 per method, error bars of one std).
``--dataset-type`` sets the type of every dataset of the dataloaders, e.g.
``UnverifiedCIFAR100`` for CIFAR-100 files in the official layout that are
not the official archive's (mmpretrain checks their md5).
"""
import argparse
import glob
import json
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from regime_study import (ROOT, mean_std, member_keys,  # noqa: E402
                          run_device, run_grid, train_then_test)

ENSEMBLE = 'ensemble/accuracy/top1'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--name', required=True, help='name of the outputs')
    parser.add_argument('--dataset', default='cifar100',
                        help='config name suffix: cifar100, in1k, mnist5k')
    parser.add_argument('--backbone', default='resnet32',
                        help="part of the config name, e.g. resnet32, wrn-40-2")
    parser.add_argument('--methods', nargs='+', required=True)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--data-root', help='the datasets\' data_root')
    parser.add_argument('--dataset-type',
                        help='type of every dataset of the dataloaders')
    parser.add_argument('--epochs', type=int,
                        help='train this many epochs (schedule scaled)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='KEY=VALUE options for every run')
    parser.add_argument('--jobs', type=int, default=1, help='runs at once')
    parser.add_argument('--threads', type=int, default=1,
                        help='intra-op threads of each run')
    parser.add_argument(
        '--work-dir', default=osp.join(ROOT, 'work_dirs', 'method_study'))
    parser.add_argument(
        '--out-dir', default=osp.join(ROOT, 'results', 'method_study'))
    parser.add_argument('--redo', action='store_true')
    return parser.parse_args(argv)


def method_config(method: str, backbone: str, dataset: str) -> str:
    """The one config of ``method`` for ``backbone`` on ``dataset``."""
    pattern = osp.join('configs', method, f'*{backbone}*_{dataset}.py')
    found = sorted(glob.glob(osp.join(ROOT, pattern)))
    if len(found) != 1:
        raise SystemExit(
            f'method_study: {len(found)} configs match {pattern} '
            f'({[osp.basename(f) for f in found]}); give a --backbone that '
            'names exactly one.')
    return osp.relpath(found[0], ROOT)


def _datasets(dataset: dict):
    """A dataloader's dataset and the ones it wraps."""
    while isinstance(dataset, dict):
        yield dataset
        dataset = dataset.get('dataset')


def scale_schedule(cfg, epochs: int) -> None:
    """Train ``epochs`` epochs: epoch-based scheduler bounds, milestones,
    ``T_max`` and loss ramps scaled from the config's own length."""
    factor = epochs / cfg.train_cfg.max_epochs
    cfg.train_cfg.max_epochs = epochs
    schedulers = cfg.param_scheduler
    for scheduler in (schedulers if isinstance(schedulers, list)
                      else [schedulers]):
        for key in ('begin', 'end', 'T_max'):
            if key in scheduler and scheduler[key] is not None:
                scheduler[key] = max(1, round(scheduler[key] * factor)) \
                    if scheduler[key] else 0
        if 'milestones' in scheduler:
            scheduler['milestones'] = sorted(
                {max(1, round(m * factor)) for m in scheduler['milestones']})
    ramps = cfg.model.get('loss_ramp')
    for ramp in ([ramps] if isinstance(ramps, dict) else ramps or []):
        if ramp.get('by_epoch', True):
            ramp['length'] = max(1, round(ramp['length'] * factor))


def study_config(args: argparse.Namespace, config: str, seed: int):
    """The config of one run."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    for loader in LOADERS:
        for dataset in _datasets((cfg.get(loader) or {}).get('dataset')):
            if args.data_root and 'data_root' in dataset:
                dataset['data_root'] = args.data_root
            if args.dataset_type and 'dataset' not in dataset:
                dataset['type'] = args.dataset_type
    if args.epochs:
        scale_schedule(cfg, args.epochs)
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    cfg.merge_from_dict(args.cfg_options)
    return cfg


def reported_key(metrics: dict) -> str:
    """The method's reported classifier: CohortAccuracy's first top-1."""
    return next(k for k in metrics if k.endswith('/accuracy/top1'))


def train_and_test(args: argparse.Namespace, method: str,
                   seed: int) -> dict:
    """One (method, seed) run (reused if finished); its record."""
    config = method_config(method, args.backbone, args.dataset)
    run_dir = osp.join(args.work_dir, args.name, f'{method}_seed{seed}')
    record_file = osp.join(run_dir, 'run.json')
    if osp.isfile(record_file) and not args.redo:
        with open(record_file) as f:
            return json.load(f)
    start = time.time()
    trained = train_then_test(run_dir, study_config(args, config, seed),
                              args.threads, 'method_study', need_best=False)
    metrics = trained['metrics']
    key = reported_key(metrics)
    record = dict(
        method=method, seed=seed, config=config,
        run_config=osp.relpath(trained['config'], ROOT),
        commands=trained['commands'],
        checkpoint=osp.basename(trained['checkpoint']),
        selected_on='val' if osp.basename(trained['checkpoint']).startswith(
            'best_') else 'last epoch',
        reported=key,
        test={k: metrics[k] for k in
              dict.fromkeys([key, ENSEMBLE] + member_keys(metrics))},
        device=run_device(), wall_s=round(time.time() - start, 1))
    with open(record_file, 'w') as f:
        json.dump(record, f, indent=1)
    return record


def summarise(runs: List[dict]) -> List[dict]:
    """Mean and sample std over seeds of each method."""
    groups: Dict[str, List[dict]] = {}
    for r in runs:
        groups.setdefault(r['method'], []).append(r)
    rows = []
    for method, group in groups.items():
        keys = member_keys(group[0]['test'])
        rows.append(dict(
            method=method, config=group[0]['config'],
            reported=group[0]['reported'], seeds=[r['seed'] for r in group],
            num_members=len(keys),
            reported_top1=mean_std([r['test'][r['reported']] for r in group]),
            ensemble=mean_std([r['test'][ENSEMBLE] for r in group]),
            members=mean_std([
                sum(r['test'][k] for k in keys) / len(keys) for r in group
            ])))
    return rows


def table(rows: List[dict], runs: List[dict], args) -> str:
    fmt = '{:.2f} ± {:.2f}'.format
    selected = ', '.join(sorted({r['selected_on'] for r in runs}))
    lines = [
        f'Test top-1 (%), mean ± sample std over seeds {args.seeds}; '
        f'checkpoint: {selected}. {args.dataset}, {args.backbone}'
        f"{f', {args.epochs} epochs' if args.epochs else ''}. Trained on: "
        f"{', '.join(sorted({r['device'] for r in runs}))}.", '',
        '| method | config | reported classifier | reported top-1 | '
        'members (mean of N) | N | ensemble |', '|---|---|---|---|---|---|---|'
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {osp.basename(r['config'])} | "
            f"{r['reported']} | {fmt(*r['reported_top1'])} | "
            f"{fmt(*r['members'])} | {r['num_members']} | "
            f"{fmt(*r['ensemble'])} |")
    return '\n'.join(lines)


def plot(rows: List[dict], path: str, title: str) -> str:
    """The reported top-1 of each method, one-std error bars."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(rows) + 2), 4))
    ax.bar(range(len(rows)), [r['reported_top1'][0] for r in rows],
           yerr=[r['reported_top1'][1] for r in rows], capsize=3)
    ax.set_xticks(range(len(rows)),
                  [f"{r['method']}\n{r['reported']}" for r in rows],
                  fontsize=7, rotation=45, ha='right')
    ax.set(ylabel='test top-1 (%)', title=title)
    ax.grid(alpha=0.3, axis='y')
    fig.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(fig)
    return path


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    configs = {m: method_config(m, args.backbone, args.dataset)
               for m in args.methods}  # every name checked before training
    runs = [(m, s) for m in args.methods for s in args.seeds]
    print(f'[method_study] {len(runs)} runs of {sorted(configs.values())}, '
          f'{args.jobs} at a time', flush=True)
    records = run_grid(
        runs, args.jobs, lambda run: train_and_test(args, *run),
        lambda run, record: f'{run[0]} seed {run[1]}: {record["reported"]} '
        f'{record["test"][record["reported"]]:.2f}', 'method_study')
    rows = summarise(records)
    text = table(rows, records, args)
    print(text)
    from mmmcl.utils.provenance import write_result
    out = osp.join(args.out_dir, args.name)
    write_result(out + '.json', dict(
        settings=dict(dataset=args.dataset, backbone=args.backbone,
                      methods=args.methods, seeds=args.seeds,
                      epochs=args.epochs, data_root=args.data_root,
                      dataset_type=args.dataset_type,
                      cfg_options=args.cfg_options),
        summary=rows, table=text, runs=records),
        argv=[osp.abspath(__file__)] + (sys.argv[1:] if argv is None
                                        else argv))
    with open(out + '.md', 'w') as f:
        f.write(text + '\n')
    plot(rows, out + '.png', f'method study "{args.name}" ({args.dataset}, '
         f'{args.backbone}), seeds {args.seeds}')
    print(f'[method_study] wrote {out}.json, .md, .png', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
