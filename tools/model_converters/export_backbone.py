"""Export a cohort member's backbone, or check an export against a config.

    python tools/model_converters/export_backbone.py CKPT --member I OUT \
        [--config CFG]
    python tools/model_converters/export_backbone.py --check EXPORT CONFIG \
        [CONFIG ...]

The export (``state_dict`` without the ``backbone.`` prefix, plain ``meta``)
loads in mmdet / mmseg with ``init_cfg=dict(type='Pretrained',
checkpoint=OUT)``. ``--check`` builds ``model.backbone`` of each mmdet, mmseg
or mmmcl config and fails (exit code 1) on any missing or unexpected key or
shape mismatch, which mmengine's Pretrained init would skip silently.
"""
import argparse
import sys
from typing import List, Optional

from mmmcl.apis import check_export_against_config, export_backbone
from mmmcl.utils import UnsafeCheckpointError


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Export a cohort member's backbone for mmdet / mmseg")
    parser.add_argument('checkpoint', nargs='?', help='cohort checkpoint')
    parser.add_argument('out', nargs='?', help='output file of the export')
    parser.add_argument(
        '--member', type=int, help='index of the member to export (from 0)')
    parser.add_argument(
        '--config',
        help='cohort config (default: the one stored in the checkpoint)')
    parser.add_argument(
        '--check',
        nargs='+',
        metavar='PATH',
        help='EXPORT CONFIG [CONFIG ...]: check that EXPORT loads into '
        'model.backbone of each CONFIG')
    # intermixed: CKPT --member I OUT fills both optional positionals
    args = parser.parse_intermixed_args(argv)
    if args.check:
        if len(args.check) < 2:
            parser.error('--check takes EXPORT and at least one CONFIG')
        if args.checkpoint or args.member is not None or args.config:
            parser.error('--check takes EXPORT CONFIG [CONFIG ...] and no '
                         'other argument')
    elif args.out is None or args.member is None:
        parser.error('give CKPT --member I OUT, or --check EXPORT CONFIG')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if args.check:
            export, *configs = args.check
            for config in configs:
                result = check_export_against_config(export, config)
                print(f'OK: {export} loads into model.backbone '
                      f'({result["target"]}) of {config}: all '
                      f'{result["num_tensors"]} tensors, no missing or '
                      'unexpected key, no shape mismatch.')
        else:
            result = export_backbone(args.checkpoint, args.member, args.out,
                                     args.config)
            print(f'Exported member {result["member"]} '
                  f'({result["arch"]}, {result["num_tensors"]} tensors, '
                  f'{result["num_params"]:,} parameters) of '
                  f'{args.checkpoint} to {result["out"]}.')
    except (ValueError, KeyError, OSError, UnsafeCheckpointError) as e:
        # a KeyError's str() is the repr of its message
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'{type(e).__name__}: {message}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
