"""tools/analysis_tools/gpu_check.py: refuses without CUDA, runs on CPU,
projects 300 epochs from what it measured."""
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
KINDS = ['single', 'baseline', 'dml', 'mcl', 'lmcl', 'one', 'cl-ilr',
         'okddip', 'kdcl', 'pcl', 'ffl']
# runs the script as `python SCRIPT ARGS` would, on a machine without mmdet,
# mmseg and mmcv.ops (like the GPU machine, whose mmcv is built without ops:
# no mmcv._ext, so MMEngine's optimizer constructor does not look for them)
RUNNER = '''
import importlib.abc, runpy, sys


class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmdet', 'mmseg') or name == 'mmcv.ops' \\
                or name.startswith('mmcv.ops.'):
            raise ImportError(f'{name} is hidden by test_gpu_check')


sys.meta_path.insert(0, Hide())
sys.modules['mmcv._ext'] = None
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
    assert 'no CUDA device' in err and '--device cpu --quick' in err
    assert not out.exists()


def test_defaults_fit_the_gpu_run(gpu_check):
    """One command: every method of the zoo, eager and compiled, bf16
    after fp32, no row started after 7 minutes."""
    args = gpu_check.parse_args([])
    assert args.kinds == KINDS and args.modes == ['eager', 'compiled']
    assert (args.iters, args.warmup, args.batch_size) == (120, 10, 128)
    assert args.time_budget == 420 and args.meta_interval is None
    assert 4 in args.data_workers  # the configs' num_workers


def test_cpu_smoke_run(tmp_path):
    """Without mmdet, mmseg and mmcv.ops, every kind trains 4 iterations
    eagerly on CPU (the meta step at 0 and 2), the data pipelines run, and
    the projections follow from the measured steps."""
    out = tmp_path / 'gpu.json'
    args = ['--device', 'cpu', '--quick', '--modes', 'eager', '--threads',
            '1', '--data-workers', '0', '4', '--out', str(out)]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-c', RUNNER, str(SCRIPT), *args], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=600)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads(out.read_text())
    assert saved['complete']
    rows = saved['rows']
    assert [(r['kind'], r['precision'], r['mode']) for r in rows] == [
        (k, 'fp32', 'eager') for k in KINDS]
    single = rows[0]['normal_step_s']
    for r in rows:
        assert r['error'] is None and r['skipped'] is None and r['finite'], r
        assert r['steps_timed'] == 2 and r['peak_mib'] is None  # CPU
        assert r['img_per_s'] == pytest.approx(4 / r['normal_step_s'])
        assert r['x_single'] == pytest.approx(r['normal_step_s'] / single)
        assert r['x_eager'] is None and 'graphs' not in r
        has_meta = r['kind'] == 'lmcl'
        assert r['meta_interval'] == (50 if has_meta else None)
        assert r['meta_steps_timed'] == int(has_meta)  # iteration 2
        assert (r['meta_step_s'] is not None) == has_meta
        # 12,500 steps of B=4 an epoch, 250 meta steps at the interval of 50
        epoch_s = 12_500 * r['normal_step_s'] + (
            250 * r['meta_step_s'] if has_meta else 0.)
        assert r['projected_300e_h'] == pytest.approx(300 * epoch_s / 3600)
        assert r['img_per_s_amortised'] == pytest.approx(50_000 / epoch_s)
        loader = next(d for d in saved['data_rows']
                      if r['kind'] in d['kinds'] and d['workers'] == 4)
        assert r['projected_300e_data_h'] == pytest.approx(
            300 * max(epoch_s, 50_000 / loader['img_per_s']) / 3600)
    lmcl = rows[KINDS.index('lmcl')]
    assert lmcl['meta_in_steps'] == pytest.approx(
        lmcl['meta_step_s'] / lmcl['normal_step_s'])

    data = saved['data_rows']
    assert all(d['error'] is None and d['img_per_s'] > 0 for d in data)
    pipelines = {(d['source'], d['pipeline']): d['kinds'] for d in data}
    crop_flip = 'RandomCrop(pad 4)+RandomFlip'
    assert pipelines == {
        ('cpu workers', crop_flip): [
            'single', 'baseline', 'dml', 'mcl', 'lmcl', 'one', 'cl-ilr',
            'okddip'],
        ('cpu workers', f'MultiView(2 x {crop_flip})'): ['kdcl'],
        ('cpu workers', f'MultiView(3 x {crop_flip})'): ['pcl'],
        ('cpu workers', 'RandomCrop(pad 4 reflect)+RandomFlip'): ['ffl'],
        ('cpu workers', 'PackInputs'): [],  # the device-side crop's loader
        ('cpu preprocessor', 'normalise (ClsDataPreprocessor)'): [],
        ('cpu preprocessor', 'RandomCropFlip + normalise'): []}
    assert [d['workers'] for d in data] == [0, 4] * 5 + [None] * 2

    lines = saved['table'].split('\n')
    assert len(lines) == 2 + len(rows)
    assert 'other jobs may share the CPU' in lines[0]
    assert 'compiled' not in lines[0]
    for r, line in zip(rows, lines[2:]):
        assert line.startswith(f"| {r['kind']} | fp32 | eager | ")
        assert line.endswith(' | ok |')
    assert len(saved['data_table'].split('\n')) == 2 + len(data)
    assert saved['table'] in proc.stdout
    assert saved['data_table'] in proc.stdout
    prov = saved['provenance']
    assert prov['command'].startswith(
        'python tools/analysis_tools/gpu_check.py --device cpu --quick')
    assert prov['commit'] and prov['machine']['device'] == 'cpu'


def test_precisions_and_memory_formats(gpu_check):
    """fp32 and AMP bf16, contiguous and channels-last, in that order; the
    channels-last step computes what the contiguous one does; AMP on the
    CPU gives a result or reports its error."""
    args = gpu_check.parse_args([
        '--device', 'cpu', '--quick', '--modes', 'eager', '--kinds',
        'single', 'lmcl', '--amp-dtypes', 'bfloat16', '--memory-formats',
        'contiguous', 'channels-last'])
    rows = gpu_check.run_rows(args, lambda rows: None)
    assert [(r['precision'], r['kind']) for r in rows] == [
        (p, k) for p in ('fp32', 'fp32 channels-last', 'AMP bfloat16',
                         'AMP bfloat16 channels-last')
        for k in ('single', 'lmcl')]
    for r in rows[:4]:
        assert r['error'] is None and r['finite'], r
    for contiguous, channels_last in zip(rows[:2], rows[2:4]):
        assert channels_last['loss_first'] == pytest.approx(
            contiguous['loss_first'], rel=1e-4)
    for r in rows[4:]:
        assert r['error'] is None or r['error'].split(':')[0].isidentifier()


@pytest.mark.slow
def test_compiled_rows(gpu_check):
    """``torch.compile(model.train_step)``: the first loss is the eager
    row's (same weights and batch), the meta step is timed inside the
    compiled step, nothing recompiles after the warm-up."""
    args = gpu_check.parse_args([
        '--device', 'cpu', '--quick', '--kinds', 'single', 'lmcl',
        '--threads', '1'])
    rows = gpu_check.with_projections(
        gpu_check.run_rows(args, lambda rows: None), [], args)
    assert [(r['mode'], r['kind']) for r in rows] == [
        (m, k) for m in ('eager', 'compiled') for k in ('single', 'lmcl')]
    for eager, compiled in zip(rows[:2], rows[2:]):
        assert compiled['error'] is None and compiled['finite'], compiled
        assert compiled['loss_first'] == pytest.approx(
            eager['loss_first'], rel=1e-4)
        assert compiled['graphs'] > 0 and compiled['recompiles_timed'] == 0
        assert compiled['x_eager'] == pytest.approx(
            eager['normal_step_s'] / compiled['normal_step_s'])
        assert compiled['meta_steps_timed'] == eager['meta_steps_timed']
    assert rows[3]['meta_steps_timed'] == 1 and rows[3]['meta_step_s'] > 0


def fake_row(kind, variant, args):
    if kind == 'lmcl' and variant.amp:
        raise RuntimeError('meta step under GradScaler\nsecond line')
    step = dict(single=0.1, lmcl=0.3)[kind] / (1 + variant.compiled)
    return dict(img_per_s=4 / step, normal_step_s=step, meta_step_s=None,
                meta_in_steps=None, meta_extra_mib=None, meta_steps_timed=0,
                steps_timed=1, peak_mib=None, warmup_s=1., loss_first=4.6,
                loss_last=4.5, finite=True,
                **(dict(graphs=3, graph_breaks=1, recompiles_timed=0)
                   if variant.compiled else {}))


def test_failed_row_is_reported(gpu_check, monkeypatch):
    """A row that raises is recorded with its error; the others run."""
    monkeypatch.setattr(gpu_check, 'train_row', fake_row)
    args = gpu_check.parse_args(['--device', 'cpu', '--kinds', 'single',
                                 'lmcl', '--amp-dtypes', 'float16'])
    seen = []
    rows = gpu_check.run_rows(args, lambda so_far: seen.append(len(so_far)))
    # the rows so far are reported after each one (a cut run keeps them)
    assert seen == list(range(1, 9))
    assert [(r['precision'], r['mode'], r['kind']) for r in rows] == [
        (p, m, k) for p in ('fp32', 'AMP float16')
        for m in ('eager', 'compiled') for k in ('single', 'lmcl')]
    assert [r['error'] for r in rows] == [None] * 5 + [
        'RuntimeError: meta step under GradScaler', None,
        'RuntimeError: meta step under GradScaler']
    gpu_check.with_projections(rows, [], args)
    assert rows[1]['x_single'] == pytest.approx(3.)
    assert rows[3]['x_eager'] == pytest.approx(2.)
    assert rows[5]['x_single'] is None and rows[7]['x_eager'] is None
    lines = gpu_check.table(rows, args).split('\n')
    # meta steps of L-MCL not timed: no projection
    assert lines[3].startswith('| lmcl | fp32 | eager | 13 | - | 0.3000 | '
                               '3.00 | - | - | - | - | - | 1.0 | - | - | - |')
    assert lines[5].startswith('| lmcl | fp32 | compiled | 27 | - | 0.1500 '
                               '| 3.00 | 2.00 |')
    assert '| 3/1/0 |' in lines[5]
    assert lines[7] == ('| lmcl | AMP float16 | eager |' + ' - |' * 14 +
                        ' FAILED: RuntimeError: meta step under GradScaler |')


def test_time_budget_skips_the_rest(gpu_check, monkeypatch):
    """No row starts after ``--time-budget`` seconds: it is listed as
    skipped, not failed."""
    clock = [0.]

    def slow_row(kind, variant, args):
        clock[0] += 100.
        return fake_row(kind, variant, args)

    monkeypatch.setattr(gpu_check, 'train_row', slow_row)
    monkeypatch.setattr(gpu_check.time, 'perf_counter', lambda: clock[0])
    args = gpu_check.parse_args(['--device', 'cpu', '--kinds', 'single',
                                 'lmcl', '--time-budget', '150'])
    rows = gpu_check.run_rows(args, lambda rows: None, start=0.)
    assert [r['skipped'] for r in rows] == [None, None] + [
        'time budget (150 s)'] * 2
    assert all(r['error'] is None for r in rows)
    gpu_check.with_projections(rows, [], args)
    lines = gpu_check.table(rows, args).split('\n')
    assert lines[4] == ('| single | fp32 | compiled |' + ' - |' * 14 +
                        ' skipped: time budget (150 s) |')


def test_projection(gpu_check):
    """300 epochs of ceil(50,000 / 128) = 391 steps, the meta steps at the
    config's interval (8 an epoch at 50), each epoch at least as long as
    the loader takes at the config's workers."""
    args = gpu_check.parse_args(['--device', 'cpu', '--batch-size', '128'])

    def row(kind, step, meta=None, interval=None, mode='eager'):
        return dict(kind=kind, precision='fp32', mode=mode, error=None,
                    skipped=None, normal_step_s=step, meta_step_s=meta,
                    meta_interval=interval, num_workers=4)

    rows = [row('single', 0.02), row('lmcl', 0.05, 0.8, 50),
            row('lmcl', 0.025, 0.8, 50, mode='compiled'),
            row('mcl', 0.03, None, None), row('lmcl', 0.05, None, 50)]
    rows[3]['precision'] = rows[4]['precision'] = 'AMP bfloat16'
    data = [dict(source='cpu workers', kinds=['single', 'lmcl'], workers=0,
                 img_per_s=500.),
            dict(source='cpu workers', kinds=['single', 'lmcl'], workers=4,
                 img_per_s=2500.)]
    gpu_check.with_projections(rows, data, args)
    single, lmcl, compiled, mcl, no_meta = rows
    assert single['projected_300e_h'] == pytest.approx(300 * 7.82 / 3600)
    # the loader's 20 s an epoch bind the single network's 7.82 s
    assert single['projected_300e_data_h'] == pytest.approx(300 * 20 / 3600)
    assert lmcl['projected_300e_h'] == pytest.approx(
        300 * (391 * 0.05 + 8 * 0.8) / 3600)
    assert lmcl['projected_300e_data_h'] == lmcl['projected_300e_h']
    assert lmcl['img_per_s_amortised'] == pytest.approx(50_000 / 25.95)
    assert lmcl['x_single'] == pytest.approx(2.5)
    assert compiled['x_eager'] == pytest.approx(2.)
    assert compiled['x_single'] is None  # no compiled single row
    assert mcl['projected_300e_h'] == pytest.approx(300 * 11.73 / 3600)
    assert mcl['projected_300e_data_h'] is None  # no loader row for MCL
    assert mcl['x_single'] is None  # no single row in AMP
    # L-MCL without a timed meta step: no projection
    assert no_meta['projected_300e_h'] is None
    assert no_meta['img_per_s_amortised'] is None
