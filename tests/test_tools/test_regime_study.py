"""tools/analysis_tools/regime_study.py: the grid's configs, its errors and
a tiny end-to-end study that writes the JSON, the table and the plot."""
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools/analysis_tools/regime_study.py'


@pytest.fixture(scope='module')
def study():
    spec = importlib.util.spec_from_file_location('regime_study', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('argv, match', [
    (['--methods', 'lmcl', 'one_typo'], r"unknown method\(s\) \['one_typo'\]"),
    (['--labels-per-digit', '20', '500'], r'--labels-per-digit \[500\]'),
    (['--labels-per-digit', '1'], r'sizes in 2..300'),
    (['--ramps', 'cosine'], r"unknown ramp\(s\) \['cosine'\]"),
])
def test_refuses_an_unknown_grid(study, argv, match, capsys):
    with pytest.raises(SystemExit, match=match):
        study.parse_args(['--name', 'x'] + argv)


def test_regime_config(study):
    cfg = study.regime_config('lmcl', 20, 'sigmoid', epochs=60,
                              iters_per_epoch=10, seed=3)
    assert cfg.train_dataloader.dataset.num_per_class == 20
    assert cfg.train_dataloader.batch_sampler.num_batches == 10
    assert cfg.train_dataloader.batch_size == 20
    assert cfg.train_dataloader.batch_sampler.num_per_class == 2
    assert cfg.train_cfg.max_epochs == 60
    assert cfg.model.loss_ramp == dict(
        type='LossWeightRamp', shape='sigmoid', length=160, by_epoch=False)
    assert [s['end'] for s in cfg.param_scheduler] == [4, 60]
    assert cfg.param_scheduler[1]['T_max'] == 56
    assert cfg.optim_wrapper.cohort.optimizer.lr == 0.1
    assert cfg.randomness.seed == 3
    assert 'loss_ramp' not in study.regime_config('mcl', 50, 'off', 30).model
    # a zoo config's own ramp (80 epochs) gives way to the regime's
    assert 'loss_ramp' not in study.regime_config('one', 20, 'off', 8).model
    assert study.regime_config('pcl', 20, 'linear', 8, 25).model.loss_ramp == \
        dict(type='LossWeightRamp', shape='linear', length=53, by_epoch=False)


def test_member_keys_cover_every_peer(study):
    metrics = {f'member{m}/accuracy/top1': m for m in (10, 2, 0, 1)}
    metrics.update({'member0/accuracy/top5': 0, 'ensemble/accuracy/top1': 0})
    assert study.member_keys(metrics) == [
        f'member{m}/accuracy/top1' for m in (0, 1, 2, 10)]


@pytest.mark.parametrize('method, ramp, config', [
    ('lmcl', 'sigmoid', 'configs/lmcl/'
     'lmcl-ramp_resnet20x2_1xb20-8e_mnist5k-20pd.py'),
    ('baseline', 'off', 'configs/baseline/'
     'baseline_resnet20x2_1xb20-8e_mnist5k-20pd.py'),
])
def test_demo_configs_are_the_study_regime(study, method, ramp, config):
    """`make demo`'s cohorts are the study's runs of the chosen regime
    (20 labelled images a digit, defaults of the tool, seed 0)."""
    from mmengine.config import Config
    regime = study.regime_config(method, 20, ramp, epochs=8,
                                 iters_per_epoch=25, seed=0).to_dict()
    assert Config.fromfile(REPO / config).to_dict() == regime


@pytest.mark.slow  # the method study's end-to-end test runs the same grid
def test_tiny_study_writes_json_table_and_plot(study, tmp_path):
    argv = ['--name', 'tiny', '--methods', 'dml', 'baseline',
            '--labels-per-digit', '10', '--ramps', 'linear', '--seeds', '0',
            '--epochs', '2', '--iters-per-epoch', '1', '--work-dir',
            str(tmp_path / 'work'), '--out-dir', str(tmp_path / 'out')]
    assert study.main(argv) == 0
    result = json.loads((tmp_path / 'out' / 'tiny.json').read_text())
    assert result['provenance']['command'].startswith(
        'python tools/analysis_tools/regime_study.py --name tiny')
    assert len(result['provenance']['commit']) >= 40
    runs = {(r['method'], r['ramp']): r for r in result['runs']}
    assert set(runs) == {('dml', 'linear'), ('baseline', 'off')}
    for run in runs.values():
        assert [p['epoch'] for p in run['val_curve']] == [1, 2]
        assert set(run['test']) == {'member0/accuracy/top1',
                                    'member1/accuracy/top1',
                                    'ensemble/accuracy/top1'}
        assert 0 <= run['test']['ensemble/accuracy/top1'] <= 100
        assert Path(REPO / run['config']).is_file() or \
            Path(run['config']).is_file()
    dml = [r for r in result['summary'] if r['method'] == 'dml'][0]
    assert dml['members'][0] == pytest.approx(
        (runs['dml', 'linear']['test']['member0/accuracy/top1'] +
         runs['dml', 'linear']['test']['member1/accuracy/top1']) / 2)
    assert (tmp_path / 'out' / 'tiny.md').read_text().strip() == \
        result['table']
    assert (tmp_path / 'out' / 'tiny.png').stat().st_size > 10000
    # finished runs are reused, not retrained
    record = tmp_path / 'work' / 'dml_n10_linear_2x1_lr0.1_seed0' / 'run.json'
    mtime = record.stat().st_mtime
    assert study.main(argv) == 0
    assert record.stat().st_mtime == mtime
    # a rerun starts from an empty folder: a stale best checkpoint of a run
    # cut short cannot pass for the new run's
    stale = record.parent / 'best_ensemble_accuracy_top1_epoch_99.pth'
    stale.write_bytes(b'not a checkpoint')
    redo = argv[:] + ['--redo']
    redo.remove('baseline')
    assert study.main(redo) == 0
    assert not stale.exists()
    assert json.loads(record.read_text())['best_checkpoint'] != stale.name


def test_runs_train_with_one_thread_like_the_demo(study, monkeypatch,
                                                  tmp_path):
    """CPU results depend on the intra-op thread count: the study and
    tools/run_demo.py both train with one, so that the study's seed-0 runs
    of the demo's configs are the demo's numbers."""
    seen = []
    monkeypatch.setattr(
        study.subprocess, 'run', lambda cmd, **kw: seen.append(kw['env']) or
        type('Done', (), {'returncode': 0})())
    args = study.parse_args(['--name', 'x'])
    assert args.threads == 1
    study._call(['true'], str(tmp_path / 'log'), args.threads)
    spec = importlib.util.spec_from_file_location('run_demo',
                                                  REPO / 'tools/run_demo.py')
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.setattr(demo.subprocess, 'run',
                        lambda cmd, **kw: seen.append(kw['env']))
    demo.run(['true'])
    assert [(e['OMP_NUM_THREADS'], e['MKL_NUM_THREADS'])
            for e in seen] == [('1', '1')] * 2
