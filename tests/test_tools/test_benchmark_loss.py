import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest
import torch

SCRIPT = (Path(__file__).parents[2] / 'tools' / 'analysis_tools' /
          'benchmark_loss.py')
TINY = dict(num_stages=2, batch_size=8, embed_dim=16, repeats=2, warmup=1,
            device='cpu')


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('benchmark_loss', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops on a busy CPU: intra-op threads only add waiting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_argv(tmp_path: Path) -> list:
    return [
        '--device', 'cpu', '--threads', '1',
        '--num-stages', '2', '--batch-size', '8', '--embed-dim', '16',
        '--repeats', '2', '--warmup', '0', '--skip-train-step',
        '--bank-stages', '2', '--bank-batch', '4', '--bank-negatives', '16',
        '--bank-samples', '50', '--bank-repeats', '1', '--out-dir',
        str(tmp_path)
    ]


@pytest.mark.parametrize('num_nets', [2, 3])
def test_loss_benchmark_rows(bench, num_nets):
    result = bench.run_loss_benchmark(num_nets=num_nets, **TINY)
    # M nets x M-1 peers x S x S stage pairs
    assert result['shapes']['num_blocks'] == num_nets * (num_nets - 1) * 4
    names = [row['name'] for row in result['rows']]
    assert names == ['naive per-block loop', 'mmmcl InBatchContrastLoss']
    for row in result['rows']:
        assert math.isfinite(row['median_s']) and row['median_s'] > 0
        assert row['peak_bytes'] > 0
        assert math.isfinite(row['time_ratio'])
        assert math.isfinite(row['mem_ratio'])
    assert result['rows'][0]['time_ratio'] == 1.
    assert set(result['value_rel_diff']) == set(bench.TERMS)
    assert all(d <= 1e-5 for d in result['value_rel_diff'].values())
    assert result['grad_rel_diff'] <= 1e-5
    assert result['ok'] is True


def test_bank_benchmark_rows(bench):
    result = bench.run_bank_benchmark(
        num_nets=2, num_stages=2, batch_size=4, num_negatives=16,
        embed_dim=8, num_samples=50, repeats=1, warmup=0)
    assert [row['name'] for row in result['rows']] == [
        'naive per-block loop', 'mmmcl MemoryBankContrastLoss'
    ]
    assert result['shapes']['num_blocks'] == 8
    # 8 blocks x 4 gathers of (B, K + 2, D) fp32 rows
    assert result['literal_graph_bytes'] == 8 * 4 * 4 * 18 * 8 * 4
    assert result['ok'] is True
    assert result['grad_rel_diff'] <= 1e-5


def test_loss_benchmark_detects_disagreement(bench, monkeypatch, tmp_path):
    naive = bench.naive_inbatch_contrast

    def perturbed(*args, **kwargs):
        terms = naive(*args, **kwargs)
        terms['soft_icl'] = terms['soft_icl'] * (1 + 1e-3)
        return terms

    monkeypatch.setattr(bench, 'naive_inbatch_contrast', perturbed)
    result = bench.run_loss_benchmark(num_nets=2, **TINY)
    assert result['ok'] is False
    assert result['value_rel_diff']['soft_icl'] > 1e-5
    assert result['value_rel_diff']['vcl'] <= 1e-5
    assert result['grad_rel_diff'] > 1e-5  # soft_icl's gradient scaled too
    assert bench.main(_tiny_argv(tmp_path)) == 1


def _table_cells(table: str) -> list:
    """The cells of a markdown table, row by row; checks its shape."""
    header, rule, *lines = table.split('\n')
    assert all(line.startswith('| ') and line.endswith(' |')
               for line in [header, *lines])
    rows = [line[2:-2].split(' | ') for line in [header, *lines]]
    assert rule == '|' + '---|' * len(rows[0])
    assert {len(row) for row in rows} == {len(rows[0])}
    return rows


def test_main_writes_results(bench, tmp_path):
    assert bench.main(_tiny_argv(tmp_path)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'bank_loss.json', 'inbatch_loss.json'
    ]
    for name, fused in [('inbatch_loss.json', 'mmmcl InBatchContrastLoss'),
                        ('bank_loss.json', 'mmmcl MemoryBankContrastLoss')]:
        saved = json.loads((tmp_path / name).read_text())
        prov = saved['provenance']
        assert prov['command'].startswith(
            'python tools/analysis_tools/benchmark_loss.py --device cpu')
        assert prov['commit'] and prov['machine']['torch_threads'] == 1
        assert saved['ok'] is True and len(saved['rows']) == 2
        header, naive, ours = _table_cells(saved['table'])
        assert 'other jobs may share the CPU' in header[0]
        assert f"{prov['machine']['cpu_count']} CPUs" in header[0]
        assert naive[0].startswith('naive per-block loop')
        assert naive[-1] == 'reference'
        assert ours[0] == fused
        # the table shows the file's figures
        assert ours[1] == f"{saved['rows'][1]['median_s'] * 1e3:.2f}"
        assert ours[3] == f"{saved['rows'][1]['time_ratio']:.3f}"


def test_train_benchmark_rows(bench):
    result = bench.run_train_benchmark(batch_size=4, repeats=2,
                                       meta_repeats=1, warmup=0)
    names = [row['name'] for row in result['rows']]
    assert names[:6] == [
        'single network', '2 x single network (stepped one after the other)',
        'MCL pair', 'L-MCL pair, normal step (meta step not due)',
        'L-MCL meta step alone', 'L-MCL pair, step with the meta step due'
    ]
    rows = dict(zip(names, result['rows']))
    interval = result['meta_interval']
    assert interval == 50 and result['meta_repeats'] == 1
    # measured rows: 2 timed calls, the meta-step ones 1; M x single is
    # timed, not twice the single network
    assert [len(r['times_s']) for r in result['rows'][:6]] == [2] * 4 + [1] * 2
    assert not any(r['derived'] for r in result['rows'][:6])
    for r in result['rows'][:6]:
        assert r['median_s'] == statistics.median(r['times_s'])
    amortised = result['rows'][6]
    assert amortised['derived'] and amortised['times_s'] == []
    assert f'({interval - 1} x normal + due) / {interval}' in amortised['name']
    normal = rows['L-MCL pair, normal step (meta step not due)']['median_s']
    due = rows['L-MCL pair, step with the meta step due']['median_s']
    assert amortised['median_s'] == pytest.approx(
        ((interval - 1) * normal + due) / interval)
    assert result['rows'][1]['ratio'] == 1.
    assert rows['L-MCL meta step alone']['img_per_s'] is None
    assert result['rows'][0]['img_per_s'] == pytest.approx(
        4 / result['rows'][0]['median_s'])

    header, *cells = _table_cells(bench.train_table('title', result))
    assert header == ['title', 's/step', 'ratio to 2 x single', 'img/s']
    assert [c[0] for c in cells] == names
    assert cells[4][3] == '-' and cells[1][2] == '1.00'


def test_time_calls_every(bench):
    calls = []
    fns = [lambda: calls.append('a'), lambda: calls.append('b')]
    times = bench.time_calls(fns, repeats=5, warmup=1,
                             device=torch.device('cpu'), every=[1, 2])
    assert [len(t) for t in times] == [5, 3]  # rounds 0, 2, 4 for 'b'
    assert calls == ['a', 'b', 'a', 'b', 'a', 'a', 'b', 'a', 'a', 'b']

