"""Train configs under several seeds and tabulate mean and spread.

Each (config, seed) is an ordinary ``tools/train.py`` run with
``randomness.seed=S`` in ``WORK_DIR/<config name>/seed<S>``; its best
checkpoint (chosen on val) is then scored by ``tools/test.py`` on the val
and the test split. Finished runs are reused unless ``--redo`` is given.
The table (mean +- sample std over seeds) is printed and written to
``WORK_DIR/results.md``, and with the raw numbers and the provenance
(command, commit, machine) in ``results.json``.

    python tools/analysis_tools/seed_sweep.py CONFIG [CONFIG ...] \
        [--seeds 0 1 2] [--work-dir work_dirs/seed_sweep]
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
SPLITS = ('val', 'test')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument(
        '--work-dir', default=osp.join(ROOT, 'work_dirs', 'seed_sweep'))
    parser.add_argument(
        '--redo', action='store_true', help='retrain finished runs')
    return parser.parse_args()


def run(cmd: List[str]) -> None:
    print('[seed_sweep] $', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def evaluate(config: str, checkpoint: str, work_dir: str,
             split: str) -> Dict[str, float]:
    out_dir = osp.join(work_dir, f'eval_{split}')
    run([
        sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
        out_dir, '--cfg-options', f'test_dataloader.dataset.split={split}'
    ])
    latest = sorted(glob.glob(osp.join(out_dir, '*', '*.json')))[-1]
    with open(latest) as f:
        return json.load(f)


def train_and_score(config: str, seed: int, work_dir: str,
                    redo: bool) -> Dict[str, Dict[str, float]]:
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
    if redo or not best:
        run([
            sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
            '--cfg-options', f'randomness.seed={seed}'
        ])
        best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
    if not best:
        raise FileNotFoundError(
            f'{work_dir} has no best_*.pth: the config must validate and '
            'set default_hooks.checkpoint.save_best.')
    return {s: evaluate(config, best[-1], work_dir, s) for s in SPLITS}


def summarise(values: List[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.mean(values):.2f} ± {spread:.2f}'


def main() -> int:
    args = parse_args()
    raw = {}
    for config in args.configs:
        name = osp.splitext(osp.basename(config))[0]
        raw[name] = {
            seed: train_and_score(config, seed,
                                  osp.join(args.work_dir, name, f'seed{seed}'),
                                  args.redo)
            for seed in args.seeds
        }

    keys = [k for k in next(iter(next(iter(raw.values())).values()))['val']
            if k.endswith('top1')]
    header = ['config', 'split'] + [k.replace('/accuracy/top1', '')
                                    for k in keys]
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for name, runs in raw.items():
        for split in SPLITS:
            cells = [summarise([runs[s][split][k] for s in args.seeds])
                     for k in keys]
            lines.append('| ' + ' | '.join([name, split] + cells) + ' |')
    table = '\n'.join(
        [f'Top-1 (%), mean ± sample std over seeds {args.seeds}; '
         'checkpoint chosen on val.', ''] + lines)
    print(table)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    from mmmcl.utils.provenance import write_result
    write_result(osp.join(args.work_dir, 'results.json'),
                 dict(table=table, seeds=args.seeds, runs=raw))
    return 0


if __name__ == '__main__':
    sys.exit(main())
