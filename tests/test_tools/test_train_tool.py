"""tools/train.py end to end on a tiny mmpretrain classifier (CPU)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mmmcl.utils import load_from_local

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / 'tools' / 'train.py'
TEST = REPO / 'tools' / 'test.py'

CONFIG = '''
default_scope = 'mmpretrain'
model = dict(
    type='{model_type}',
    backbone=dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                  out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=64,
              loss=dict(type='CrossEntropyLoss')))
data_preprocessor = dict(
    num_classes=2, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True)
_dataset = dict(
    type='CustomDataset', data_root={data_root!r},
    pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')])
train_dataloader = dict(
    batch_size=4, num_workers=0, dataset=_dataset,
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=4, num_workers=0, dataset=_dataset,
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict()
train_cfg = dict(by_epoch=False, max_iters=2, val_interval=2)
val_cfg = dict()
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=100,
         milestones=[1, 3], gamma=0.5)
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(by_epoch=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
'''


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """Two classes of four random 32x32 PNGs each."""
    root = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(0)
    for name in ('cat', 'dog'):
        (root / name).mkdir()
        for i in range(4):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f'{i}.png')
    return root


def write_config(path, data_root, model_type='ImageClassifier'):
    path.write_text(
        CONFIG.format(data_root=str(data_root), model_type=model_type))
    return path


def run_tool(*args, cwd, tool=TRAIN):
    # one thread: 2 cores, and other tests may run beside this one
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, str(tool), *map(str, args)],
                          capture_output=True,
                          text=True,
                          cwd=cwd,
                          env=env,
                          timeout=180)


def check(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def resumed_run(image_folder, tmp_path_factory):
    """Train 2 iterations, then resume the same work dir up to 4."""
    tmp = tmp_path_factory.mktemp('resume')
    config = write_config(tmp / 'tiny_cls.py', image_folder)
    work_dir = tmp / 'work'
    first = check(run_tool(config, '--work-dir', work_dir, cwd=tmp))
    first_ckpt = load_from_local(str(work_dir / 'iter_2.pth'), 'cpu')
    second = check(
        run_tool(
            config,
            '--work-dir',
            work_dir,
            '--resume',
            '--cfg-options',
            'train_cfg.max_iters=4',
            cwd=tmp))
    return dict(
        tmp=tmp,
        config=config,
        work_dir=work_dir,
        first_log=first,
        first_ckpt=first_ckpt,
        log=second)


def test_train_writes_checkpoints(resumed_run):
    work_dir = resumed_run['work_dir']
    ckpt = resumed_run['first_ckpt']
    assert ckpt['meta']['iter'] == 2
    assert ckpt['meta']['dataset_meta']['classes'] == ('cat', 'dog')
    assert (work_dir / 'iter_1.pth').is_file()
    assert (work_dir / 'tiny_cls.py').is_file()  # the config copy
    assert 'Iter(train) [2/2]' in resumed_run['first_log']


def test_resume_continues_from_iter_2(resumed_run):
    log = resumed_run['log']
    work_dir = resumed_run['work_dir']
    assert f'Auto resumed from the latest checkpoint {work_dir}' in log
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith(
        'iter_4.pth')

    ckpt = load_from_local(str(work_dir / 'iter_4.pth'), 'cpu')
    assert ckpt['meta']['iter'] == 4
    hub = ckpt['message_hub']
    # 0-based index of the last iteration, set by RuntimeInfoHook
    assert hub['runtime_info']['iter'] == 3
    # 2 losses came back from iter_2.pth, 2 were added
    assert len(hub['log_scalars']['train/loss'].data[0]) == 4
    assert hub['log_scalars']['train/loss'].data[0][:2].tolist() == \
        resumed_run['first_ckpt']['message_hub']['log_scalars'][
            'train/loss'].data[0].tolist()
    states = list(ckpt['optimizer']['state'].values())
    assert states and all('momentum_buffer' in s for s in states)


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(resumed_run):
    """Weights after 2 + 2 resumed iterations equal 4 in one go."""
    tmp = resumed_run['tmp']
    work_dir = tmp / 'straight'
    check(
        run_tool(
            resumed_run['config'],
            '--work-dir',
            work_dir,
            '--cfg-options',
            'train_cfg.max_iters=4',
            cwd=tmp))
    straight = load_from_local(str(work_dir / 'iter_4.pth'), 'cpu')
    resumed = load_from_local(
        str(resumed_run['work_dir'] / 'iter_4.pth'), 'cpu')
    assert straight['state_dict'].keys() == resumed['state_dict'].keys()
    for key, value in straight['state_dict'].items():
        torch.testing.assert_close(
            resumed['state_dict'][key], value, msg=key)


def test_test_tool_evaluates_and_dumps(resumed_run):
    tmp = resumed_run['tmp']
    out = tmp / 'preds.pkl'
    log = check(
        run_tool(
            resumed_run['config'],
            resumed_run['work_dir'] / 'iter_4.pth',
            '--work-dir',
            tmp / 'test_work',
            '--out',
            out,
            cwd=tmp,
            tool=TEST))
    assert 'Iter(test) [2/2]' in log and 'accuracy/top1' in log
    assert out.is_file() and out.stat().st_size > 0
    proc = run_tool(
        resumed_run['config'], tmp / 'none.pth', cwd=tmp, tool=TEST)
    assert proc.returncode != 0
    assert f'checkpoint file not found: {tmp / "none.pth"}' in proc.stderr


def test_test_tool_takes_the_readme_flags(resumed_run):
    """``--work-dir --out --amp --cfg-options --launcher``; ``--amp`` tests
    under autocast (bf16 on this CPU)."""
    spec = importlib.util.spec_from_file_location('mmmcl_test_tool', TEST)
    test_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_tool)
    tmp = resumed_run['tmp']
    argv = [
        str(resumed_run['config']),
        str(resumed_run['work_dir'] / 'iter_4.pth'), '--work-dir',
        str(tmp / 'amp_work'), '--out',
        str(tmp / 'amp.pkl'), '--amp', '--cfg-options',
        'test_dataloader.batch_size=2', '--launcher', 'none'
    ]
    cfg = test_tool.merge_args(
        Config.fromfile(str(resumed_run['config'])),
        test_tool.parse_args(argv))
    assert cfg.test_cfg.fp16 is True
    assert cfg.test_dataloader.batch_size == 2
    assert cfg.launcher == 'none' and cfg.work_dir == str(tmp / 'amp_work')
    test_tool.main(argv)
    assert (tmp / 'amp.pkl').stat().st_size > 0


def test_missing_config(tmp_path):
    proc = run_tool(tmp_path / 'no_such_config.py', cwd=tmp_path)
    assert proc.returncode != 0
    assert 'config file not found' in proc.stderr
    assert str(tmp_path / 'no_such_config.py') in proc.stderr


def test_unknown_type_names_type_registry_and_scope(image_folder, tmp_path):
    config = write_config(
        tmp_path / 'bad.py', image_folder, model_type='NoSuchClassifier')
    proc = run_tool(config, '--work-dir', tmp_path / 'work', cwd=tmp_path)
    assert proc.returncode != 0
    assert ('NoSuchClassifier is not in the mmpretrain::model registry'
            in proc.stderr), proc.stderr[-2000:]


def test_missing_data_root_names_the_field_and_fix(tmp_path):
    missing = tmp_path / 'no_images_here'
    config = write_config(tmp_path / 'no_data.py', missing)
    proc = run_tool(config, '--work-dir', tmp_path / 'work', cwd=tmp_path)
    assert proc.returncode != 0
    last = proc.stderr.splitlines()[-1]
    assert 'FileNotFoundError' in last and str(missing) in last
    assert '`train_dataloader.dataset.data_root`' in last
    assert '--cfg-options train_dataloader.dataset.data_root=' in last


# ---- command line -> config, in process -----------------------------------


def _train_module():
    spec = importlib.util.spec_from_file_location('mmmcl_train_tool', TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tool():
    return _train_module()


def _cfg(tmp_path, tool, text, *argv):
    path = tmp_path / 'my_exp.py'
    path.write_text(text)
    args = tool.parse_args([str(path), *argv])
    return tool.merge_args(Config.fromfile(str(path)), args)


def test_amp_sets_every_cohort_optimizer(tmp_path, tool):
    cfg = _cfg(
        tmp_path, tool, '''
optim_wrapper = dict(
    constructor='CohortOptimWrapperConstructor',
    cohort=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
    meta=dict(optimizer=dict(type='Adam', lr=1e-3)))
''', '--amp')
    wrapper = cfg.optim_wrapper
    assert wrapper.constructor == 'CohortOptimWrapperConstructor'
    for name in ('cohort', 'meta'):
        assert wrapper[name].type == 'AmpOptimWrapper'
        assert wrapper[name].loss_scale == 'dynamic'
    assert 'type' not in wrapper


def test_amp_plain_wrapper_and_custom_wrapper(tmp_path, tool):
    cfg = _cfg(tmp_path, tool,
               "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))\n",
               '--amp')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    with pytest.raises(ValueError, match='MyWrapper'):
        _cfg(tmp_path, tool, "optim_wrapper = dict(type='MyWrapper', "
             "optimizer=dict(type='SGD', lr=0.1))\n", '--amp')


COHORT_OPTIM = '''
optim_wrapper = dict(
    constructor='CohortOptimWrapperConstructor',
    cohort=dict(optimizer=dict(type='SGD', lr=0.1)),
    meta=dict(optimizer=dict(type='Adam', lr=1e-3)))
'''


def test_amp_without_a_gpu_stops_with_the_fix(tmp_path, tool, image_folder):
    cfg = _cfg(tmp_path, tool, COHORT_OPTIM, '--amp')
    with pytest.raises(RuntimeError) as e:
        tool.check_amp_device(cfg, device='cpu')
    message = str(e.value)
    assert 'optim_wrapper.cohort.type, optim_wrapper.meta.type' in message
    assert "only 'cpu'" in message and 'drop --amp' in message
    tool.check_amp_device(cfg, device='cuda')
    tool.check_amp_device(_cfg(tmp_path, tool, COHORT_OPTIM), device='cpu')
    if not torch.cuda.is_available():  # main() checks before building
        config = write_config(tmp_path / 'tiny_cls.py', image_folder)
        with pytest.raises(RuntimeError, match='drop --amp'):
            tool.main([str(config), '--amp', '--work-dir',
                       str(tmp_path / 'work')])
        assert not (tmp_path / 'work').exists()


def test_resume_work_dir_validate_flags(tmp_path, tool):
    text = ("val_cfg = dict()\nval_dataloader = dict()\n"
            "val_evaluator = dict(type='Accuracy')\n"
            'auto_scale_lr = dict(enable=False, base_batch_size=128)\n')
    cfg = _cfg(tmp_path, tool, text, '--resume')
    assert cfg.resume is True and cfg.load_from is None
    assert Path(cfg.work_dir) == Path('work_dirs/my_exp')
    assert cfg.launcher == 'none'
    cfg = _cfg(tmp_path, tool, text, '--resume', 'a/iter_2.pth',
               '--no-validate', '--auto-scale-lr', '--work-dir', 'out')
    assert cfg.resume is True and cfg.load_from == 'a/iter_2.pth'
    assert cfg.val_cfg is None and cfg.val_dataloader is None
    assert cfg.val_evaluator is None
    assert cfg.auto_scale_lr.enable is True
    assert cfg.work_dir == 'out'
    with pytest.raises(ValueError, match='base_batch_size'):
        _cfg(tmp_path, tool, 'x = 1\n', '--auto-scale-lr')
