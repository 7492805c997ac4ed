import importlib.util
import json
import math
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
        '--bank-samples', '50', '--bank-repeats', '1', '--out',
        str(tmp_path / 'bench.json')
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


def test_main_writes_json(bench, tmp_path):
    assert bench.main(_tiny_argv(tmp_path)) == 0
    saved = json.loads((tmp_path / 'bench.json').read_text())
    assert saved['loss']['ok'] is True
    assert len(saved['loss']['rows']) == 2
    assert 'train_step' not in saved


def test_format_table_aligns_columns(bench):
    table = bench.format_table(['name', 'x'], [['a', '1.5'], ['long', '10']])
    lines = table.split('\n')
    assert len({len(line) for line in lines}) == 1
    assert lines[2] == 'a     1.5' and lines[3] == 'long   10'
