"""The main job on the embedded data, end to end.

1. pretrain an L-MCL cohort and an independent baseline on MNIST-5k, in
   the regime that the regime study picked (few labelled images per digit,
   a long schedule, ramped-up distillation: see ``REGIME``);
2. export member 0's backbone of each (and check it against the transfer
   configs);
3. fine-tune Faster R-CNN and a segmentor on few labelled MNIST canvases
   (held-out digits) from (a) the L-MCL backbone, (b) the baseline
   backbone, (c) no pre-training, under each seed of ``--finetune-seeds``,
   and test them (bbox mAP, mIoU);
4. print and save the tables (``WORK_DIR/results.txt``, and with
   provenance ``--out``), curves of the fine-tunings and a few test
   canvases with the predictions drawn.

Everything is seeded and every stage trains with one intra-op thread, so
two runs print the same tables whatever ``--jobs``, and the pretraining
equals the regime study's seed-0 runs of the same configs.

Every stage is an ordinary ``tools/train.py`` / ``tools/test.py`` /
``tools/model_converters/export_backbone.py`` call (printed before it runs),
which a user can run alone; this script only chains them. A stage whose
output exists is skipped unless ``--redo`` is given.

    python tools/run_demo.py [--work-dir work_dirs/demo] [--redo] \
        [--jobs 2] [--finetune-seeds 0 1 2] [--out results/demo/demo.json]
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

# The regime study's pick (tools/analysis_tools/regime_study.py).
COHORTS = {
    'L-MCL': 'configs/lmcl/lmcl-ramp_resnet20x2_1xb20-8e_mnist5k-20pd.py',
    'baseline':
    'configs/baseline/baseline_resnet20x2_1xb20-8e_mnist5k-20pd.py',
}
REGIME = ('ResNet-20 pairs, 20 labelled images a digit, 8 epochs of 25 '
          'batches of 10 digits x 2, L-MCL ramped up (sigmoid)')
STUDY = 'results/regime_study/study.png'
# how many training canvases the fine-tunings see (few: pre-training can
# matter), set in the transfer configs
TRAIN_CANVASES = 100
TRANSFER = {
    'det': dict(
        config='configs/transfer/mmdet/'
        'faster-rcnn_cifar-r20-fpn_1xb8-8e_mnist-canvas.py',
        metric='coco/bbox_mAP',
        name='Faster R-CNN bbox mAP'),
    'seg': dict(
        config='configs/transfer/mmseg/'
        'fcn_cifar-r20_1xb8-300iter_mnist-canvas-96x96.py',
        metric='mIoU',
        name='FCN mIoU'),
}
INITS = ('L-MCL', 'baseline', 'scratch')
CLASSIFICATION = ('member0/accuracy/top1', 'member1/accuracy/top1',
                  'ensemble/accuracy/top1')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument(
        '--data-root',
        help='where the canvases are written once and reused (default '
        'data/mnist_canvas, with --tiny WORK_DIR/mnist_canvas)')
    parser.add_argument(
        '--pretrain-epochs', type=int,
        help="override the cohort configs' 8 epochs")
    parser.add_argument(
        '--tiny', action='store_true',
        help='a few iterations per stage on a few images (a smoke test)')
    parser.add_argument(
        '--finetune-seeds', nargs='+', type=int, default=[0],
        help='a fine-tuning of every (task, backbone) per seed')
    parser.add_argument(
        '--out', help='also write the tables with their provenance to this '
        'JSON file (default WORK_DIR/results.json)')
    parser.add_argument(
        '--jobs', type=int, default=2,
        help='stages run side by side, one thread each (default 2: the '
        "two cores of the demo's machine)")
    parser.add_argument(
        '--redo', action='store_true', help='rerun finished stages')
    return parser.parse_args()


def run(cmd: List[str], log: Optional[str] = None) -> None:
    """Run one stage with one intra-op thread (CPU results depend on the
    thread count; the regime study's runs use one too), its output to the
    console or, when stages run side by side, to ``log``."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    print('[demo] $', ' '.join(cmd) + (f'  > {log}' if log else ''),
          flush=True)
    if log is None:
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        return
    os.makedirs(osp.dirname(log), exist_ok=True)
    with open(log, 'a') as f:
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f,
                              stderr=subprocess.STDOUT).returncode
    if code:
        raise RuntimeError(f'[demo] `{" ".join(cmd)}` failed (exit {code})'
                           f'; its output: {log}')


def stage_log(args: argparse.Namespace, work_dir: str) -> Optional[str]:
    """Where a stage's output goes: the console when one runs at a time."""
    return osp.join(work_dir, 'demo_stage.log') if args.jobs > 1 else None


def latest(pattern: str) -> Optional[str]:
    found = sorted(glob.glob(pattern), key=osp.getmtime)
    return found[-1] if found else None


def stage_done(output: Optional[str], redo: bool, name: str) -> bool:
    if output and not redo:
        print(f'[demo] {name}: {output} exists, skipped', flush=True)
        return True
    return False


def pretrain(name: str, config: str, args: argparse.Namespace,
             work_dir: str) -> Dict[str, float]:
    """Train a cohort (val picks the checkpoint), test it; its metrics."""
    if not stage_done(latest(osp.join(work_dir, 'best_*.pth')), args.redo,
                      f'pretrain {name}'):
        options = []
        if args.pretrain_epochs:
            options.append(f'train_cfg.max_epochs={args.pretrain_epochs}')
        if args.tiny:
            options += [
                'train_cfg.max_epochs=2',
                'train_dataloader.batch_sampler.num_batches=2',
                'val_dataloader.dataset.num_per_class=5'
            ]
        run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
            + (['--cfg-options'] + options if options else []),
            stage_log(args, work_dir))
    best = latest(osp.join(work_dir, 'best_*.pth'))
    test_dir = osp.join(work_dir, 'test')
    if not stage_done(latest(osp.join(test_dir, '*', '*.json')), args.redo,
                      f'test {name}'):
        options = ['test_dataloader.dataset.num_per_class=5'] \
            if args.tiny else []
        run([sys.executable, 'tools/test.py', config, best, '--work-dir',
             test_dir] + (['--cfg-options'] + options if options else []),
            stage_log(args, work_dir))
    with open(latest(osp.join(test_dir, '*', '*.json'))) as f:
        return json.load(f)


def export(cohort_dir: str, out: str, args: argparse.Namespace) -> str:
    """Member 0's backbone of a cohort's best checkpoint, checked against
    both transfer configs."""
    if not stage_done(out if osp.isfile(out) else None, args.redo,
                      f'export {out}'):
        tool = 'tools/model_converters/export_backbone.py'
        log = stage_log(args, cohort_dir)
        run([sys.executable, tool,
             latest(osp.join(cohort_dir, 'best_*.pth')), '--member', '0',
             out], log)
        run([sys.executable, tool, '--check', out] +
            [task['config'] for task in TRANSFER.values()], log)
    return out


def data_options(task: str, data_root: str) -> List[str]:
    root = data_root.rstrip('/') + '/'
    options = [f'{loader}.dataset.data_root={root}'
               for loader in ('train_dataloader', 'val_dataloader',
                              'test_dataloader')]
    if task == 'det':
        options += [
            f'val_evaluator.ann_file={root}annotations/instances_val.json',
            f'test_evaluator.ann_file={root}annotations/instances_test.json'
        ]
    return options


def fine_tune(task: str, init: str, backbone: Optional[str], seed: int,
              args: argparse.Namespace, work_dir: str) -> float:
    """Fine-tune and test one (task, init, seed); the test metric."""
    spec = TRANSFER[task]
    options = data_options(task, args.data_root) + [f'randomness.seed={seed}']
    if backbone is not None:
        options.append(f'model.backbone.init_cfg.checkpoint={backbone}')
    else:  # scratch, said explicitly: the backbone's own random init
        options.append('model.backbone.init_cfg=None')
        if task == 'det':  # nothing to keep frozen: train every layer
            options += ['model.backbone.frozen_stages=-1',
                        'model.backbone.norm_eval=False']
    if args.tiny:
        options += ['train_cfg.max_epochs=1'] if task == 'det' else [
            'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
            'default_hooks.checkpoint.interval=4'
        ]
    if not stage_done(latest(osp.join(work_dir, 'best_*.pth')), args.redo,
                      f'fine-tune {task} from {init}'):
        run([sys.executable, 'tools/train.py', spec['config'], '--work-dir',
             work_dir, '--cfg-options'] + options, stage_log(args, work_dir))
    test_dir = osp.join(work_dir, 'test')
    if not stage_done(latest(osp.join(test_dir, '*', '*.json')), args.redo,
                      f'test {task} from {init}'):
        # det: every test canvas into test/<time>/vis; seg: the canvases
        # of every 6th batch into test/<time>/vis_data/vis_image
        vis = ['default_hooks.visualization.draw=True']
        vis.append('default_hooks.visualization.test_out_dir=vis' if task ==
                   'det' else 'default_hooks.visualization.interval=6')
        run([sys.executable, 'tools/test.py', spec['config'],
             latest(osp.join(work_dir, 'best_*.pth')), '--work-dir',
             test_dir, '--cfg-options'] + options + vis,
            stage_log(args, work_dir))
    with open(latest(osp.join(test_dir, '*', '*.json'))) as f:
        return json.load(f)[spec['metric']]


def plot_curves(work_dir: str, task: str, seed: int) -> str:
    """Training loss of the three fine-tunings of a task, one PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for init in INITS:
        log = latest(osp.join(work_dir, f'{task}_{init}_seed{seed}', '*',
                              'vis_data', 'scalars.json'))
        steps, losses = [], []
        with open(log) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    steps.append(record['iter'])
                    losses.append(record['loss'])
        ax.plot(steps, losses, label=init)
    ax.set(xlabel='iteration', ylabel='training loss',
           title=f'{TRANSFER[task]["name"].split()[0]} fine-tuning')
    ax.legend()
    out = osp.join(work_dir, f'{task}_curves.png')
    fig.savefig(out, dpi=100, bbox_inches='tight')
    plt.close(fig)
    return out


def format_table(header: List[str], rows: List[List[str]]) -> str:
    """A markdown table."""
    return '\n'.join('| ' + ' | '.join(r) + ' |' for r in
                     [header, ['---'] * len(header)] + rows)


def mean_std(values: List[float], scale: float) -> str:
    """``m`` for one value, ``m ± s`` (sample std) for several."""
    values = [scale * v for v in values]
    if len(values) == 1:
        return f'{values[0]:.1f}'
    return f'{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}'


def tables(rows: List[List[str]], transfer: Dict[tuple, List[float]],
           seeds: List[int]) -> str:
    """The demo's two tables and what they are."""
    inits = [[init] + [
        mean_std(transfer[task, init], 100 if task == 'det' else 1)
        for task in TRANSFER] for init in INITS]
    return '\n'.join([
        f'MNIST-5k pretraining ({REGIME}; the regime study: {STUDY}), '
        'test split, checkpoint chosen on val, seed 0:', '',
        format_table(['cohort', 'member0 top-1', 'member1 top-1',
                      'ensemble top-1'], rows), '',
        f'Transfer to {TRAIN_CANVASES} labelled MNIST canvases (held-out '
        "digits), test split, member 0's backbone, fine-tuning seeds "
        f'{seeds}' + (' (mean ± std)' if len(seeds) > 1 else '') + ':', '',
        format_table(['backbone'] + [t['name'] for t in TRANSFER.values()],
                     inits)])


def main() -> int:
    args = parse_args()
    start = time.time()
    work = args.work_dir
    os.makedirs(work, exist_ok=True)
    from mmmcl.datasets import prepare_mnist_canvas
    canvas = dict(num_canvases=(16, 8, 8)) if args.tiny else {}
    if args.data_root is None:
        args.data_root = osp.join(work, 'mnist_canvas') if args.tiny \
            else osp.join(ROOT, 'data', 'mnist_canvas')
    prepare_mnist_canvas(args.data_root, progress=True, **canvas)

    def cohort(name: str, config: str) -> Tuple[List[str], str]:
        cohort_dir = osp.join(work, osp.splitext(osp.basename(config))[0])
        metrics = pretrain(name, config, args, cohort_dir)
        backbone = export(
            cohort_dir,
            osp.join(work, 'backbones', f'{name.lower()}_member0.pth'), args)
        return [name] + [f'{metrics[c]:.2f}' for c in CLASSIFICATION], \
            backbone

    # stages that do not depend on each other run --jobs at a time
    with ThreadPoolExecutor(args.jobs) as pool:
        cohorts = list(pool.map(lambda item: cohort(*item), COHORTS.items()))
    rows = [row for row, _ in cohorts]
    backbones = dict(scratch=None, **{
        name: backbone
        for name, (_, backbone) in zip(COHORTS, cohorts)})
    seeds = args.finetune_seeds
    runs = [(task, init, seed) for task in TRANSFER for init in INITS
            for seed in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        metrics = list(pool.map(
            lambda run: fine_tune(
                run[0], run[1], backbones[run[1]], run[2], args,
                osp.join(work, f'{run[0]}_{run[1]}_seed{run[2]}')), runs))
    transfer: Dict[tuple, List[float]] = {}
    for (task, init, _), value in zip(runs, metrics):
        transfer.setdefault((task, init), []).append(value)
    plots = [plot_curves(work, task, seeds[0]) for task in TRANSFER]

    table = tables(rows, transfer, seeds)
    wall = time.time() - start
    print(table)
    print(f'\nplots: {", ".join(plots)}; predictions drawn under '
          f'{work}/*_*/test/; wall time {wall:.0f} s')
    with open(osp.join(work, 'results.txt'), 'w') as f:
        f.write(table + '\n')
    from mmmcl.utils.provenance import write_result
    write_result(args.out or osp.join(work, 'results.json'), dict(
        table=table, regime=REGIME, cohorts=COHORTS,
        finetune_seeds=seeds, train_canvases=TRAIN_CANVASES,
        pretraining={name: dict(zip(CLASSIFICATION, map(float, r[1:])))
                     for name, r in zip(COHORTS, rows)},
        transfer={f'{task}/{init}': v for (task, init), v in
                  transfer.items()},
        tiny=args.tiny, wall_s=round(wall, 1)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
