"""The main job on the embedded data: pretrain cohorts on MNIST-5k.

Chains ordinary ``tools/train.py`` / ``tools/test.py`` calls (each can be
run alone) for an L-MCL cohort and an independent baseline, then prints
and saves one table: test top-1 of each member and the ensemble, with the
checkpoint picked on the val split. A stage whose checkpoint exists is
skipped unless ``--redo`` is given. Plots (loss curves, learned matching
weights) land under each work dir's ``vis_data/vis_image``.

    python tools/run_demo.py [--work-dir work_dirs/demo] [--epochs N]
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STAGES = (
    ('L-MCL', 'configs/lmcl/lmcl_resnet20x2_1xb100-15e_mnist5k.py'),
    ('baseline', 'configs/baseline/baseline_resnet20x2_1xb100-15e_mnist5k.py'),
)
COLUMNS = ('member0/accuracy/top1', 'member1/accuracy/top1',
           'ensemble/accuracy/top1')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                       'demo'))
    parser.add_argument(
        '--epochs', type=int, help='override the configs\' 15 epochs')
    parser.add_argument(
        '--redo', action='store_true', help='rerun finished stages')
    return parser.parse_args()


def run(cmd: list) -> None:
    print('[demo] $', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def best_checkpoint(work_dir: str) -> str:
    found = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
    if not found:
        raise FileNotFoundError(f'no best_*.pth in {work_dir}: training did '
                                'not validate; rerun with --redo.')
    return found[-1]


def test_metrics(work_dir: str) -> dict:
    """Metrics of the latest tools/test.py run in ``work_dir``."""
    runs = sorted(glob.glob(osp.join(work_dir, 'test', '*', '*.json')))
    with open(runs[-1]) as f:
        return json.load(f)


def main() -> int:
    args = parse_args()
    start = time.time()
    rows = []
    for name, config in STAGES:
        work_dir = osp.join(args.work_dir, osp.splitext(
            osp.basename(config))[0])
        if args.redo or not glob.glob(osp.join(work_dir, 'best_*.pth')):
            cmd = [sys.executable, 'tools/train.py', config,
                   '--work-dir', work_dir]
            if args.epochs:
                cmd += ['--cfg-options', f'train_cfg.max_epochs={args.epochs}']
            run(cmd)
        else:
            print(f'[demo] {name}: checkpoint exists in {work_dir}, skipped')
        run([sys.executable, 'tools/test.py', config,
             best_checkpoint(work_dir), '--work-dir',
             osp.join(work_dir, 'test')])
        metrics = test_metrics(work_dir)
        rows.append([name] + [f'{metrics[c]:.2f}' for c in COLUMNS])

    header = ['method', 'member0 top-1', 'member1 top-1', 'ensemble top-1']
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    lines = ['  '.join(c.ljust(w) for c, w in zip(r, widths))
             for r in [header] + rows]
    table = '\n'.join(
        ['MNIST-5k test split (checkpoint chosen on val), ResNet-20 pairs:']
        + lines + [f'wall time {time.time() - start:.0f} s'])
    print(table)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'results.txt'), 'w') as f:
        f.write(table + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
