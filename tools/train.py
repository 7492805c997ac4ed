"""Train a model from a config: mmmcl, mmpretrain, mmdet or mmseg.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--no-validate] [--cfg-options KEY=VALUE ...]
        [--launcher {none,pytorch,slurm,mpi}]

The config's ``default_scope`` decides which package builds it; its
registries import that package. ``mmmcl`` is always imported so that every
checkpoint (``load_from``, ``--resume``) is loaded with
``torch.load(weights_only=True)`` and mmmcl's allow-list.

With ``--launcher`` (``tools/dist_train.sh``) a cohort is wrapped in
``CohortDistributedDataParallel``; on a machine without CUDA the processes
use gloo (see :func:`mmmcl.engine.model_wrappers.prepare_distributed`).
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

from mmengine.config import Config, DictAction
from mmengine.device import get_device
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmmcl.engine.model_wrappers import prepare_distributed
# importing mmmcl turns on its safe checkpoint loading
from mmmcl.utils import check_data_roots, drop_disabled_hooks

AMP_WRAPPER = 'AmpOptimWrapper'
# where mmengine's AmpOptimWrapper runs (it asserts one of these)
AMP_DEVICES = ('cuda', 'npu', 'mlu', 'musa')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir',
        help='directory for logs and checkpoints (default: the config\'s '
        'work_dir, else ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (AmpOptimWrapper, dynamic loss '
        'scale; needs a GPU: on a CPU-only machine it stops with the fix)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the actual over the config\'s base batch size '
        '(needs auto_scale_lr.base_batch_size in the config)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate during training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. train_cfg.max_iters=10 '
        'optim_wrapper.optimizer.lr=0.1; lists as key="[a,b]" or key=a,b')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torchrun sets LOCAL_RANK; torch.distributed.launch passes the flag.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _optim_wrapper_dicts(optim_wrapper: dict) -> List[Tuple[str, dict]]:
    """The dicts that build one optimizer wrapper each, with their field.

    A plain ``optim_wrapper`` is one. A config with a ``constructor`` (e.g.
    mmmcl's ``CohortOptimWrapperConstructor``) may hold one sub-dict per
    optimizer: every sub-dict with an ``optimizer`` key.
    """
    if 'optimizer' in optim_wrapper:
        return [('optim_wrapper', optim_wrapper)]
    return [(f'optim_wrapper.{key}', value)
            for key, value in optim_wrapper.items()
            if isinstance(value, dict) and 'optimizer' in value]


def check_amp_device(cfg: Config, device: Optional[str] = None) -> None:
    """Fail with the fix, not mmengine's assertion, where AMP cannot run.

    mmengine's AmpOptimWrapper (autocast with a GradScaler) asserts a CUDA,
    NPU, MLU or MUSA device when it is built.

    Args:
        cfg (Config): The config, after the command line.
        device (str, optional): The device kind; defaults to mmengine's
            ``get_device()``.
    """
    device = get_device() if device is None else device
    if device in AMP_DEVICES:
        return
    fields = [
        f'{field}.type' for field, wrapper in _optim_wrapper_dicts(
            cfg.get('optim_wrapper') or {})
        if wrapper.get('type') == AMP_WRAPPER
    ]
    if fields:
        raise RuntimeError(
            f'Mixed precision ({AMP_WRAPPER} at {", ".join(fields)}, which '
            f'--amp sets) needs a GPU ({" / ".join(AMP_DEVICES)}), and this '
            f"machine has only '{device}', where mmengine's {AMP_WRAPPER} "
            'does not run. Train in fp32 here: drop --amp (or set those '
            "fields to 'OptimWrapper').")


def enable_amp(cfg: Config) -> None:
    """Make every optimizer wrapper in ``cfg`` an AmpOptimWrapper."""
    optim_wrapper = cfg.get('optim_wrapper')
    wrappers = _optim_wrapper_dicts(optim_wrapper) if optim_wrapper else []
    if not wrappers:
        raise ValueError(
            '--amp: found no optimizer in the config\'s optim_wrapper '
            '(neither optim_wrapper.optimizer nor a sub-dict with an '
            '`optimizer` key)')
    for _, wrapper in wrappers:
        wrapper_type = wrapper.get('type', 'OptimWrapper')
        if wrapper_type == AMP_WRAPPER:
            continue
        if wrapper_type != 'OptimWrapper':
            raise ValueError(
                f'--amp: cannot turn the custom optimizer wrapper '
                f'`{wrapper_type}` into {AMP_WRAPPER}; set it in the config')
        wrapper['type'] = AMP_WRAPPER
        wrapper.setdefault('loss_scale', 'dynamic')


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

    if args.amp:
        enable_amp(cfg)

    if args.auto_scale_lr:
        auto_scale_lr = cfg.get('auto_scale_lr')
        if not auto_scale_lr or 'base_batch_size' not in auto_scale_lr:
            raise ValueError(
                '--auto-scale-lr needs auto_scale_lr=dict(enable=False, '
                'base_batch_size=...) in the config: the total batch size '
                'the config\'s lr was set for')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    check_amp_device(cfg)
    check_data_roots(cfg)
    prepare_distributed(cfg)  # the cohort's DDP wrapper; gloo without CUDA
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main(sys.argv[1:])
