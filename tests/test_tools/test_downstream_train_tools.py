"""mmdet's and mmseg's own ``tools/train.py`` load an mmmcl export into the
transfer configs' backbone exactly, and fail loudly when they cannot.

Each test runs the tool shipped in the installed package (``<pkg>/.mim/
tools/train.py``) as a user would, for one iteration on a tiny canvas set,
with ``optim_wrapper.optimizer.lr=0`` and the BN statistics frozen
(``norm_eval``): the saved checkpoint's backbone is then exactly what the
init loaded, so it must equal the export tensor for tensor.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope

from mmmcl.utils import load_from_local

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {
    'mmdet': REPO / 'configs/transfer/mmdet/'
    'faster-rcnn_cifar-r20-fpn_1xb8-8e_mnist-canvas.py',
    'mmseg': REPO / 'configs/transfer/mmseg/'
    'fcn_cifar-r20_1xb8-300iter_mnist-canvas-96x96.py',
}
MEMBER = dict(_scope_='mmmcl', type='CifarResNet', depth=20,
              out_indices=(0, 1, 2))
# One iteration, nothing learnt, no validation, no visualisation.
COMMON = ('optim_wrapper.optimizer.lr=0', 'model.backbone.norm_eval=True',
          'val_dataloader=None', 'val_cfg=None', 'val_evaluator=None',
          'default_hooks.checkpoint.save_best=None',
          'default_hooks.logger.interval=1')
SCHEDULE = {
    'mmdet': ('train_cfg.max_epochs=1', ),
    'mmseg': ('train_cfg.max_iters=1', 'default_hooks.checkpoint.interval=1')
}
CHECKPOINT = {'mmdet': 'epoch_1.pth', 'mmseg': 'iter_1.pth'}


def tool(package: str) -> Path:
    """``tools/train.py`` as the installed package ships it."""
    spec = importlib.util.find_spec(package)
    path = Path(spec.submodule_search_locations[0]) / '.mim/tools/train.py'
    assert path.is_file(), f'{package} ships no {path}'
    return path


@pytest.fixture(scope='module')
def canvases(tmp_path_factory) -> str:
    """8 training canvases: one batch of the configs' 8."""
    from mmmcl.datasets import prepare_mnist_canvas
    root = tmp_path_factory.mktemp('canvas') / 'mnist_canvas'
    return prepare_mnist_canvas(str(root), num_canvases=(8, 1, 1))


@pytest.fixture(scope='module')
def export(tmp_path_factory) -> tuple:
    """An export of a CifarResNet-20 member (``state_dict`` + ``meta``):
    Kaiming-initialised convs of another seed and random BN parameters and
    statistics, so that nothing equals the detector's own initialisation
    and one step stays finite."""
    from mmmcl.registry import MODELS
    torch.manual_seed(3)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        member = MODELS.build(MEMBER)
        member.init_weights()
    state = member.state_dict()
    g = torch.Generator().manual_seed(3)
    for key, value in state.items():
        if value.dim() == 1 and value.is_floating_point():  # BN
            noise = torch.rand(value.shape, generator=g)
            value.copy_(noise + 0.5 if key.endswith(('weight', 'running_var'))
                        else noise - 0.5)
    path = tmp_path_factory.mktemp('export') / 'member0.pth'
    torch.save(dict(state_dict=state, meta=dict(member=0, arch=MEMBER)), path)
    return path, state


def train(package: str, work_dir: Path, canvases: str,
          *options: str) -> subprocess.CompletedProcess:
    root = canvases.rstrip('/') + '/'
    cmd = [
        sys.executable,
        str(tool(package)),
        str(CONFIGS[package]), '--work-dir',
        str(work_dir), '--cfg-options',
        f'train_dataloader.dataset.data_root={root}', *COMMON,
        *SCHEDULE[package], *options
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    return subprocess.run(
        cmd, cwd=work_dir.parent, env=env, capture_output=True, text=True,
        timeout=300)


@pytest.mark.parametrize('package', ['mmdet', 'mmseg'])
def test_own_tool_loads_the_export_exactly(package, canvases, export,
                                           tmp_path):
    path, state = export
    work_dir = tmp_path / 'work'
    proc = train(package, work_dir, canvases,
                 f'model.backbone.init_cfg.checkpoint={path}')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    n = len(state)
    assert f"Loaded '{path}' into CifarResNet: {n} of {n} tensors, 0 " \
        'missing, 0 unexpected' in out
    saved = load_from_local(str(work_dir / CHECKPOINT[package]))
    backbone = {
        k[len('backbone.'):]: v
        for k, v in saved['state_dict'].items() if k.startswith('backbone.')
    }
    assert backbone.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(backbone[key], value), key


def test_mmdet_tool_fails_on_a_wrong_path(canvases, tmp_path):
    missing = tmp_path / 'typo' / 'member0.pth'
    proc = train('mmdet', tmp_path / 'work', canvases,
                 f'model.backbone.init_cfg.checkpoint={missing}')
    assert proc.returncode != 0
    assert 'FileNotFoundError' in proc.stderr
    assert repr(str(missing)) in proc.stderr
    assert not list((tmp_path / 'work').glob('*.pth'))


def test_mmseg_tool_fails_on_another_depth(canvases, export, tmp_path):
    path, _ = export
    proc = train('mmseg', tmp_path / 'work', canvases,
                 f'model.backbone.init_cfg.checkpoint={path}',
                 'model.backbone.depth=32')
    assert proc.returncode != 0
    err = proc.stderr
    assert f"ValueError: '{path}': The weights do not load into CifarResNet"\
        in err
    # depth 32 has 5 blocks a stage, the export 3
    assert 'missing keys' in err and 'stages.0.3.conv1.weight' in err
    assert not list((tmp_path / 'work').glob('*.pth'))

