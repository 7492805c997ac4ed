"""Print the environment and what in it differs from the tested stack.

Run ``python -m mmmcl.utils.collect_env``. It prints mmengine's environment
report, the versions of the OpenMMLab packages mmmcl uses, whether
``mmcv.ops`` (the compiled operators mmdet and mmseg need) imports, and a
line with the fix for anything outside the stack mmmcl is tested with. The
exit status is 1 if something is off, 0 otherwise.
"""
import sys
from collections import OrderedDict
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Dict, List, Optional

#: The stack mmmcl is tested with (requirements/runtime.txt), as
#: ``report key -> (distribution, module, version)``.
TESTED_STACK = OrderedDict([
    ('PyTorch', ('torch', 'torch', '2.14.1')),
    ('TorchVision', ('torchvision', 'torchvision', '0.29.1')),
    ('MMEngine', ('mmengine', 'mmengine', '0.10.7')),
    ('MMCV', ('mmcv', 'mmcv', '2.1.0')),
    ('MMPreTrain', ('mmpretrain', 'mmpretrain', '1.2.0')),
    ('MMDetection', ('mmdet', 'mmdet', '3.3.0')),
    ('MMSegmentation', ('mmsegmentation', 'mmseg', '1.2.2')),
    ('OpenMIM', ('openmim', 'mim', '0.3.8')),
])

FIX = ('run `make install` in the mmmcl clone (`make install VENV=` for '
       'the python on PATH) to install the tested stack')


def _version(dist: str, module: str) -> Optional[str]:
    """Installed version, or None if the package is not installed."""
    try:
        return version(dist)
    except PackageNotFoundError:
        pass
    try:
        return import_module(module).__version__
    except Exception:  # missing or broken: reported as not installed
        return None


def _mmcv_ops() -> str:
    """'yes', or why ``import mmcv.ops`` fails."""
    try:
        import_module('mmcv.ops')
    except Exception as e:  # ImportError, or OSError from a bad _ext
        return f'no: {type(e).__name__}: {e}'
    return 'yes'


def collect_env(with_torch_compiling_info: bool = False) -> Dict[str, str]:
    """Collect mmengine's environment report plus the OpenMMLab packages.

    Args:
        with_torch_compiling_info (bool): Keep torch's long build
            configuration. Defaults to False.

    Returns:
        dict: Report key -> value, e.g. ``'MMCV': '2.1.0'``,
        ``'MMCV ops': 'yes'``, ``'mmmcl': '0.1.0'``.
    """
    from mmengine.utils.dl_utils import collect_env as collect_base_env

    env = collect_base_env()
    if not with_torch_compiling_info:
        env.pop('PyTorch compiling details', None)
    for key, (dist, module, _) in TESTED_STACK.items():
        if key not in env:  # mmengine reports torch, torchvision, itself
            env[key] = _version(dist, module) or 'not installed'
    env['MMCV ops'] = _mmcv_ops()
    from mmmcl import __version__
    env['mmmcl'] = __version__
    return env


def check_stack(env: Dict[str, str]) -> List[str]:
    """List what in ``env`` differs from :data:`TESTED_STACK`.

    Args:
        env (dict): The output of :func:`collect_env`.

    Returns:
        list[str]: One line per problem; empty if the stack is the tested
        one.
    """
    problems = []
    for key, (dist, _, tested) in TESTED_STACK.items():
        found = env.get(key, 'not installed')
        # local version labels (``2.14.1+cu130``) are builds of the same
        # release
        if found == 'not installed':
            problems.append(f'{dist}: not installed (tested with {tested})')
        elif found.split('+')[0] != tested:
            problems.append(f'{dist}: found {found}, tested with {tested}')
    ops = env.get('MMCV ops', 'no: not checked')
    if ops != 'yes':
        problems.append(
            f'mmcv.ops does not import ({ops[len("no: "):]}); mmdet and '
            'mmseg need mmcv built with its ops (full mmcv, not mmcv-lite)')
    return problems


def main() -> int:
    env = collect_env()
    for key, value in env.items():
        print(f'{key}: {value}')
    problems = check_stack(env)
    print()
    if not problems:
        print('Stack check: OK (the stack mmmcl is tested with)')
        return 0
    print('Stack check: outside the tested stack')
    for line in problems:
        print(f'  - {line}')
    print(f'Fix: {FIX}.')
    return 1


if __name__ == '__main__':
    sys.exit(main())
