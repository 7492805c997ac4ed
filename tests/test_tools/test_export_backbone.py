"""tools/model_converters/export_backbone.py: export and --check."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmcl.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'model_converters' / 'export_backbone.py'


def member(backbone, width):
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=backbone,
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', in_channels=width))


COHORT = dict(
    type='CohortDistiller',
    num_classes=4,
    peers=dict(
        type='IndependentPeers',
        members=[
            member(dict(type='mmpretrain.ResNet', depth=18), 512),
            member(
                dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)), 64)
        ]))


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('export_backbone_tool',
                                                  TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def cohort_ckpt(tmp_path_factory):
    """A ResNet-18 + CIFAR ResNet-8 cohort saved as mmengine's Runner
    does (config text and state dict)."""
    tmp = tmp_path_factory.mktemp('tool')
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(COHORT)
    ckpt = tmp / 'epoch_3.pth'
    torch.save(
        {
            'meta': {
                'cfg': Config(dict(model=COHORT)).pretty_text
            },
            'state_dict': model.state_dict()
        }, ckpt)
    return ckpt


def transfer_config(path: Path, depth: int) -> Path:
    path.write_text(
        "default_scope = 'mmdet'\n"
        "model = dict(type='RetinaNet', backbone=dict(type='ResNet', "
        f"depth={depth}, init_cfg=dict(type='Pretrained', "
        "checkpoint='member0.pth')))\n")
    return path


def test_export_then_check(tool, cohort_ckpt, tmp_path, capsys):
    out = tmp_path / 'member0.pth'
    assert tool.main([str(cohort_ckpt), '--member', '0', str(out)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == (f'Exported member 0 (mmpretrain.ResNet, 120 tensors, '
                       f'11,176,512 parameters) of {cohort_ckpt} to {out}.')
    state = torch.load(out, weights_only=True)['state_dict']
    assert 'conv1.weight' in state and 'layer4.1.bn2.weight' in state

    config = transfer_config(tmp_path / 'retinanet_r18.py', 18)
    assert tool.main(['--check', str(out), str(config)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f'OK: {out} loads into model.backbone '
                              '(mmdet.models.backbones.resnet.ResNet)')
    assert 'all 120 tensors' in printed


def test_failing_check_exits_1_with_the_keys(tool, cohort_ckpt, tmp_path,
                                            capsys):
    """Several configs in one call: each that fits says OK, the first that
    does not ends the call with exit code 1 and its keys."""
    out = tmp_path / 'member0.pth'
    assert tool.main([str(cohort_ckpt), '--member', '0', str(out)]) == 0
    capsys.readouterr()
    fits = transfer_config(tmp_path / 'retinanet_r18.py', 18)
    wrong = transfer_config(tmp_path / 'retinanet_r50.py', 50)
    assert tool.main(['--check', str(out), str(fits), str(wrong)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f'OK: {out} loads') and str(
        fits) in captured.out and str(wrong) not in captured.out
    err = captured.err
    assert err.startswith('ValueError: ')
    assert 'layer1.0.conv3.weight' in err and 'shape mismatches' in err


def test_bad_member_exits_1(tool, cohort_ckpt, tmp_path, capsys):
    out = tmp_path / 'member7.pth'
    assert tool.main([str(cohort_ckpt), '--member', '7', str(out)]) == 1
    err = capsys.readouterr().err
    assert str(cohort_ckpt) in err and 'no member 7' in err
    assert '0 to 1' in err and not out.exists()


def test_usage_errors(tool, capsys):
    with pytest.raises(SystemExit) as e:
        tool.main(['ckpt.pth', 'out.pth'])  # no --member
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        tool.main(['--check', 'a.pth', 'b.py', '--member', '0'])
    assert e.value.code == 2
    assert '--check takes EXPORT CONFIG' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        tool.main(['--check', 'a.pth'])  # no config
    assert e.value.code == 2
    assert 'EXPORT and at least one CONFIG' in capsys.readouterr().err


def test_command_line_exit_code(tool, cohort_ckpt, tmp_path, capsys):
    """A failed check exits 1 as a shell sees it (``sys.exit(main())``)."""
    out = tmp_path / 'member1.pth'
    assert tool.main([str(cohort_ckpt), str(out), '--member', '1']) == 0
    assert capsys.readouterr().out.startswith('Exported member 1 (Cifar')
    config = transfer_config(tmp_path / 'retinanet_r18.py', 18)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, TOOL, '--check', out, config],
                          capture_output=True,
                          text=True,
                          cwd=tmp_path,
                          env=env,
                          timeout=180)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stdout == ''
    assert 'does not fit `model.backbone`' in proc.stderr
    assert 'no key is shared' in proc.stderr
