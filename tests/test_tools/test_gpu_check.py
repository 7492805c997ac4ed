"""tools/analysis_tools/gpu_check.py: refuses without CUDA, runs on CPU."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / 'tools' / 'analysis_tools' / 'gpu_check.py'
KINDS = ['single', 'baseline', 'dml', 'mcl', 'lmcl', 'lmcl-bank']
# runs the script as `python SCRIPT ARGS` would, on a machine without mmdet,
# mmseg and mmcv.ops (like the GPU machine, whose mmcv is built without ops)
RUNNER = '''
import importlib.abc, runpy, sys


class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmdet', 'mmseg') or name == 'mmcv.ops' \\
                or name.startswith('mmcv.ops.'):
            raise ImportError(f'{name} is hidden by test_gpu_check')


sys.meta_path.insert(0, Hide())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


@pytest.fixture(scope='module')
def gpu_check():
    spec = importlib.util.spec_from_file_location('gpu_check', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_cuda_exits_2(gpu_check, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    out = tmp_path / 'gpu.json'
    assert gpu_check.main(['--out', str(out)]) == 2
    err = capsys.readouterr().err
    assert 'no CUDA device' in err and '--device cpu --iters 2' in err
    assert not out.exists()


def test_cpu_smoke_run(tmp_path):
    """Without mmdet, mmseg and mmcv.ops, every kind trains 2 iterations on
    CPU (the meta step at iteration 0); AMP rows run or report their
    error."""
    out = tmp_path / 'gpu.json'
    args = ['--device', 'cpu', '--iters', '2', '--warmup', '0',
            '--batch-size', '4', '--meta-interval', '2', '--pool', '2',
            '--bank-samples', '64', '--bank-negatives', '8', '--threads',
            '1', '--amp-dtypes', 'bfloat16', '--out', str(out)]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-c', RUNNER, str(SCRIPT), *args], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=600)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    saved = json.loads(out.read_text())
    rows = saved['rows']
    assert [(r['kind'], r['precision']) for r in rows] == [
        (k, p) for p in ('fp32', 'AMP bfloat16') for k in KINDS]
    failed = [r for r in rows if r['error'] or not r['finite']]
    assert proc.returncode == (1 if failed else 0), proc.stderr[-3000:]
    for r in rows[:len(KINDS)]:  # fp32 trains on CPU
        assert r['error'] is None and r['finite'], r
        assert r['steps_timed'] == 2 and r['img_per_s'] > 0
        assert r['peak_mib'] is None  # CPU
        has_meta = r['kind'] in ('lmcl', 'lmcl-bank')
        assert r['meta_steps_timed'] == int(has_meta)
        assert (r['meta_step_s'] is not None) == has_meta
        assert r['x_single'] == pytest.approx(
            r['normal_step_s'] / rows[0]['normal_step_s'])
    for r in rows[len(KINDS):]:  # AMP on CPU: a result or a reported error
        assert r['error'] is None or r['error'].split(':')[0].isidentifier()
    lines = saved['table'].split('\n')
    assert len(lines) == 2 + len(rows)
    assert 'other jobs may share the CPU' in lines[0]
    for r, line in zip(rows, lines[2:]):
        assert line.startswith(f"| {r['kind']} | {r['precision']} | ")
        assert ('FAILED: ' in line) == (r['error'] is not None)
    assert saved['table'] in proc.stdout
    prov = saved['provenance']
    assert prov['command'].startswith(
        'python tools/analysis_tools/gpu_check.py --device cpu --iters 2')
    assert prov['commit'] and prov['machine']['device'] == 'cpu'


def test_failed_row_is_reported(gpu_check, monkeypatch):
    """A row that raises is recorded with its error; the others run."""

    def fake_row(kind, amp_dtype, args):
        if kind == 'lmcl' and amp_dtype:
            raise RuntimeError('meta step under GradScaler\nsecond line')
        step = dict(single=0.1, lmcl=0.3)[kind]
        return dict(img_per_s=4 / step, normal_step_s=step, meta_step_s=None,
                    meta_steps_timed=0, steps_timed=1, peak_mib=None,
                    loss_first=4.6, loss_last=4.5, finite=True)

    monkeypatch.setattr(gpu_check, 'train_row', fake_row)
    args = gpu_check.parse_args(['--device', 'cpu', '--kinds', 'single',
                                 'lmcl', '--amp-dtypes', 'float16'])
    seen = []
    rows = gpu_check.run_rows(args, lambda so_far: seen.append(len(so_far)))
    # the rows so far are reported after each one (a cut run keeps them)
    assert seen == [1, 2, 3, 4]
    assert [r['error'] for r in rows] == [
        None, None, None, 'RuntimeError: meta step under GradScaler']
    assert rows[1]['x_single'] == pytest.approx(3.)
    assert rows[3]['x_single'] is None
    lines = gpu_check.table(rows, args).split('\n')
    assert lines[3].startswith('| lmcl | fp32 | 13 | 0.3000 | 3.00 | - |')
    assert lines[5] == ('| lmcl | AMP float16 | - | - | - | - | - | - | '
                        'FAILED: RuntimeError: meta step under GradScaler |')
