"""Where a measured number comes from: command, commit, machine."""
import datetime
import json
import os
import os.path as osp
import platform
import shlex
import subprocess
import sys
from typing import List, Optional

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def git_commit(root: str = ROOT) -> str:
    """HEAD's hash, with ``-dirty`` if tracked files differ from it.

    ``MMMCL_COMMIT`` in the environment wins: a caller that runs a copy of
    the tree on another machine, whose git metadata may be stale, names
    the commit. Outside a git checkout without it: ``'unknown'``.
    """
    if os.environ.get('MMMCL_COMMIT'):
        return os.environ['MMMCL_COMMIT']
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'],
                                cwd=root,
                                capture_output=True,
                                text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(
            ['git', 'status', '--porcelain', '--untracked-files=no'],
            cwd=root,
            capture_output=True,
            text=True,
            check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return commit + ('-dirty' if dirty else '')


def machine() -> dict:
    """The hardware and software a measurement ran on."""
    cuda = torch.cuda.is_available()
    return dict(
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        python=platform.python_version(),
        torch=torch.__version__,
        device=torch.cuda.get_device_name(0) if cuda else 'cpu')


def provenance(argv: Optional[List[str]] = None) -> dict:
    """Command (``argv``, default ``sys.argv``), commit, machine, date."""
    argv = sys.argv if argv is None else argv
    command = ' '.join(
        shlex.quote(a) for a in ['python', osp.relpath(argv[0], ROOT)] +
        list(argv[1:]))
    return dict(
        command=command,
        commit=git_commit(),
        machine=machine(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'))


def write_result(path: str, result: dict,
                 argv: Optional[List[str]] = None) -> str:
    """Write ``result`` with its provenance to a JSON file; the path."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    record = dict(provenance=provenance(argv), **result)
    with open(path, 'w') as f:
        json.dump(record, f, indent=1)
        f.write('\n')
    return path
