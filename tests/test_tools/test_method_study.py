"""tools/analysis_tools/method_study.py end to end on a tiny CIFAR-100 in
the official python layout (written here, so its md5 is not the official
archive's: read through ``UnverifiedCIFAR100``)."""
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'analysis_tools' / 'method_study.py'


def write_cifar100(root: Path, per_class_train: int = 2,
                   per_class_test: int = 1) -> None:
    """``cifar-100-python/{train,test,meta}`` as the official archive
    lays them out: pickled dicts of uint8 rows (N, 3072) and fine labels."""
    folder = root / 'cifar-100-python'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, per_class in (('train', per_class_train),
                             ('test', per_class_test)):
        labels = np.repeat(np.arange(100), per_class)
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        # a class-dependent brightness, so that the labels can be learnt
        data = (data // 2 + labels[:, None]).astype(np.uint8)
        with open(folder / split, 'wb') as f:
            pickle.dump({'data': data, 'fine_labels': labels.tolist(),
                         'coarse_labels': (labels // 5).tolist()}, f)
    with open(folder / 'meta', 'wb') as f:
        pickle.dump({'fine_label_names': [f'c{i}' for i in range(100)]}, f)


def test_official_cifar_refuses_the_copy_unverified_reads_it(tmp_path):
    from mmpretrain.datasets import CIFAR100

    from mmmcl.datasets import UnverifiedCIFAR100
    write_cifar100(tmp_path)
    with pytest.raises((RuntimeError, AssertionError)):
        CIFAR100(data_root=str(tmp_path), split='test', download=False)
    dataset = UnverifiedCIFAR100(data_root=str(tmp_path), split='train')
    assert len(dataset) == 200
    assert dataset.get_data_info(7)['gt_label'] == 3
    with pytest.raises(ValueError, match='download'):
        UnverifiedCIFAR100(data_root=str(tmp_path), download=True)


def test_method_study_end_to_end(tmp_path):
    """Two CIFAR-100 paper configs (a cohort and a zoo method with a
    reported classifier), one seed, one epoch: the JSON, table and plot."""
    data = tmp_path / 'cifar100'
    write_cifar100(data)
    out = tmp_path / 'out'
    cmd = [
        sys.executable, str(TOOL), '--name', 'tiny', '--dataset', 'cifar100',
        '--backbone', 'resnet32', '--methods', 'baseline', 'one', '--seeds',
        '0', '--epochs', '1', '--data-root', str(data), '--dataset-type',
        'UnverifiedCIFAR100', '--work-dir', str(tmp_path / 'work'),
        '--out-dir', str(out), '--cfg-options',
        'train_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'test_dataloader.persistent_workers=False'
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((out / 'tiny.json').read_text())
    rows = {r['method']: r for r in record['summary']}
    assert set(rows) == {'baseline', 'one'}
    assert rows['one']['reported'] == 'one/branch0/accuracy/top1'
    assert rows['baseline']['reported'] == 'ensemble/accuracy/top1'
    assert rows['one']['num_members'] == 3
    for run in record['runs']:
        assert run['selected_on'] == 'last epoch'
        assert 0 <= run['test'][run['reported']] <= 100
        cfg = Config.fromfile(ROOT / run['run_config'])
        assert cfg.train_cfg.max_epochs == 1
        assert cfg.train_dataloader.dataset.type == 'UnverifiedCIFAR100'
        assert cfg.test_dataloader.dataset.data_root == str(data)
        if run['method'] == 'one':  # 151 and 225 of 300 epochs, scaled
            assert cfg.param_scheduler.milestones == [1]
            assert cfg.model.loss_ramp.length == 1  # 80 of 300
    assert 'provenance' in record and record['table'].count('\n| ') == 3
    assert (out / 'tiny.md').read_text().strip() == record['table']
    assert (out / 'tiny.png').stat().st_size > 1000
