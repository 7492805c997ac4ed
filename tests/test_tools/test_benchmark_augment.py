"""``benchmark_augment.py`` runs both paths on the CPU and writes its rows."""
import importlib.util
import json
import math
from pathlib import Path

SCRIPT = (Path(__file__).parents[2] / 'tools' / 'analysis_tools' /
          'benchmark_augment.py')


def load():
    spec = importlib.util.spec_from_file_location('benchmark_augment', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_measures_both_paths_and_writes_them(tmp_path):
    out = tmp_path / 'augment.json'
    load().main(['--device', 'cpu', '--batch-size', '4', '--batches', '2',
                 '--workers', '0', '--out', str(out)])
    record = json.loads(out.read_text())
    assert set(record['rows']) == {'cpu', 'device'}
    for row in record['rows'].values():
        assert set(row) == {'loader_img_s', 'preprocess_img_s'}
        assert all(math.isfinite(v) and v > 0 for v in row.values())
    assert '| device |' in record['table']
    assert 'provenance' in record
