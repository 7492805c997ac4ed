"""Evaluate a checkpoint on a config's test set.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--amp] [--cfg-options KEY=VALUE ...]
        [--launcher {none,pytorch,slurm,mpi}]

As ``tools/train.py``: any config (mmmcl, mmpretrain, mmdet, mmseg); the
checkpoint is loaded with ``torch.load(weights_only=True)`` and mmmcl's
allow-list.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmmcl.engine.model_wrappers import prepare_distributed
# importing mmmcl turns on its safe checkpoint loading
from mmmcl.utils import check_data_roots, drop_disabled_hooks


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='directory for the evaluation log (default: the config\'s '
        'work_dir, else ./work_dirs/<config name>)')
    parser.add_argument(
        '--out',
        help='dump the predictions to this pickle file (.pkl or .pickle)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='test under autocast (test_cfg.fp16=True: fp16 on a GPU, '
        'bf16 on a CPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. test_dataloader.batch_size=1')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    if '://' not in args.checkpoint and not osp.isfile(
            osp.expanduser(args.checkpoint)):
        parser.error(f'checkpoint file not found: {args.checkpoint}')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must end with .pkl or .pickle: {args.out}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _add_dump(evaluator, out: str):
    """Append mmengine's DumpResults metric to a test evaluator config."""
    dump = dict(type='DumpResults', out_file_path=out)
    if evaluator is None:
        return [dump]
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        metrics = evaluator['metrics']
        if isinstance(metrics, dict):
            metrics = [metrics]
        evaluator['metrics'] = list(metrics) + [dump]
        return evaluator
    if isinstance(evaluator, dict):
        return [evaluator, dump]
    return list(evaluator) + [dump]


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to ``cfg``."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    drop_disabled_hooks(cfg)  # default_hooks.<mmmcl hook>=None: off
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.out is not None:
        cfg.test_evaluator = _add_dump(cfg.get('test_evaluator'), args.out)
    if args.amp:
        test_cfg = cfg.get('test_cfg') or {}
        if test_cfg.get('type', 'TestLoop') not in ('TestLoop',
                                                    'mmengine.TestLoop'):
            raise ValueError(
                f"--amp sets test_cfg.fp16, which mmengine's TestLoop takes; "
                f"the config's test_cfg.type is {test_cfg['type']!r}")
        cfg.test_cfg = dict(test_cfg, fp16=True)
    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    check_data_roots(cfg, loaders=('test_dataloader', ))
    prepare_distributed(cfg)  # gloo without CUDA
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main(sys.argv[1:])
