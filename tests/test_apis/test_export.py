"""Member backbone export: extraction, checks, transfer loading, the hook."""
import contextlib
import copy
import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_from_local as mmengine_load

import mmmcl
from mmmcl.apis import (check_backbone_state, check_export_against_config,
                        export_backbone, peer_backbone)
from mmmcl.apis import export as export_module
from mmmcl.engine.hooks import ExportBackbonesHook
from mmmcl.registry import MODELS
from mmmcl.testing import lmcl_model

REPO = Path(__file__).resolve().parents[2]
DML_CONFIG = REPO / 'configs/dml/dml_resnet20x2_1xb100-15e_mnist5k.py'


def member(backbone, width):
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=backbone,
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', in_channels=width))


RESNET8 = member(dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)), 64)
WRN10 = member(
    dict(type='CifarWideResNet', depth=10, widen_factor=1,
         out_indices=(0, 1, 2)), 64)
# Everything a cohort can hold besides the members: auxiliary branches,
# embedding heads, aggregators, the meta-network (members set later).
LMCL = lmcl_model([],
                  num_classes=4,
                  meta=dict(interval=2, virtual_steps=2, proj_dim=8))
INDEPENDENT = dict(
    type='CohortDistiller',
    num_classes=4,
    peers=dict(type='IndependentPeers', members=[]))

# Members of the transfer zoo, their export and their transfer backbones.
ZOO = [
    RESNET8,
    member(dict(type='mmpretrain.ResNet', depth=18), 512),
    member(dict(type='mmpretrain.ResNet', depth=50), 2048),
    member(dict(type='mmpretrain.ShuffleNetV2'), 1024),
    member(dict(type='mmpretrain.MobileNetV2'), 1280),
]
CIFAR8 = dict(_scope_='mmmcl', type='CifarResNet', depth=8)
TRANSFER = [
    (1, dict(type='ResNet', depth=18)),
    (2, dict(type='ResNet', depth=50)),
    (3, dict(type='mmpretrain.ShuffleNetV2')),
    (4, dict(type='mmpretrain.MobileNetV2')),
    (0, CIFAR8),
]


def build_cohort(cohort: dict, members) -> torch.nn.Module:
    """A cohort whose every tensor (BN statistics too) is random, so that
    equal tensors prove they were loaded, not freshly initialised."""
    cfg = with_members(cohort, members)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        model = MODELS.build(cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
            else:
                value.fill_(int(torch.randint(1, 1000, (1, ), generator=gen)))
    return model


def with_members(cohort: dict, members) -> dict:
    """The cohort config with these peers' members."""
    cfg = copy.deepcopy(cohort)
    cfg['peers']['members'] = copy.deepcopy(list(members))
    return cfg


def save_like_runner(model, cohort: dict, members, path: Path) -> str:
    """What mmengine's Runner keeps of a model: the config text and the
    state dict."""
    text = Config(dict(model=with_members(cohort, members))).pretty_text
    torch.save({'meta': {'cfg': text}, 'state_dict': model.state_dict()},
               path)
    return text


def load(path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def assert_same_tensors(actual: dict, expected: dict) -> None:
    assert list(actual) == list(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def backbone_of(state_dict: dict, i: int) -> dict:
    prefix = f'peers.members.{i}.backbone.'
    return {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }


@contextlib.contextmanager
def no_allow_list():
    """torch's own weights_only allow-list only, as in an mmdet process."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        yield
    finally:
        torch.serialization.add_safe_globals(saved)


def write_config(path: Path, default_scope: str, backbone: dict) -> str:
    path.write_text(f'default_scope = {default_scope!r}\n'
                    f'model = dict(type="Detector", backbone={backbone!r})\n')
    return str(path)


# ------------------------------------------------------------- extraction
@pytest.fixture(scope='module')
def lmcl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('lmcl')
    model = build_cohort(LMCL, [RESNET8, WRN10])
    ckpt = tmp / 'epoch_1.pth'
    text = save_like_runner(model, LMCL, [RESNET8, WRN10], ckpt)
    return SimpleNamespace(
        tmp=tmp, ckpt=str(ckpt), text=text, state=model.state_dict())


@pytest.mark.parametrize('index, backbone', [(0, RESNET8), (1, WRN10)])
def test_export_is_the_members_backbone_only(lmcl, index, backbone):
    out = lmcl.tmp / f'member{index}.pth'
    summary = export_backbone(lmcl.ckpt, index, str(out))
    export = load(out)
    assert set(export) == {'state_dict', 'meta'}
    expected = backbone_of(lmcl.state, index)
    assert_same_tensors(export['state_dict'], expected)
    for key in export['state_dict']:
        assert not key.startswith(('peers.', 'backbone.', 'branches.',
                                   'terms.', 'teachers.', 'meta_net.',
                                   'head.', 'neck.')), key
    meta = export['meta']
    assert meta['member'] == index
    assert meta['arch'] == dict(backbone['backbone'], _scope_='mmmcl')
    assert meta['config'] == lmcl.text
    assert meta['mmmcl_version'] == mmmcl.__version__
    assert meta['source_checkpoint'] == os.path.abspath(lmcl.ckpt)
    num_params = sum(v.numel() for k, v in expected.items()
                     if not k.endswith(('running_mean', 'running_var',
                                        'num_batches_tracked')))
    assert summary == dict(
        out=str(out),
        member=index,
        arch=backbone['backbone']['type'],
        num_tensors=len(expected),
        num_params=num_params)
    # it is a complete backbone: strict loading into a fresh one works
    with DefaultScope.overwrite_default_scope('mmmcl'):
        fresh = MODELS.build(backbone['backbone'])
    fresh.load_state_dict(export['state_dict'], strict=True)


def test_wrapped_model_keys(lmcl):
    wrapped = {f'module.{k}': v for k, v in lmcl.state.items()}
    cfg = Config.fromstring(lmcl.text, '.py')
    assert_same_tensors(
        peer_backbone(wrapped, cfg, 1, 'x.pth')[0],
        backbone_of(lmcl.state, 1))


def test_bad_member_names_file_index_and_range(lmcl):
    with pytest.raises(ValueError) as e:
        export_backbone(lmcl.ckpt, 2, str(lmcl.tmp / 'none.pth'))
    message = str(e.value)
    assert lmcl.ckpt in message and 'member 2' in message
    assert '0 to 1' in message
    with pytest.raises(ValueError, match='0 to 1'):
        peer_backbone(lmcl.state, Config.fromstring(lmcl.text, '.py'), -1,
                      'x.pth')
    assert not (lmcl.tmp / 'none.pth').exists()


def test_non_cohort_checkpoint_is_refused(tmp_path):
    with DefaultScope.overwrite_default_scope('mmmcl'):
        classifier = MODELS.build(dict(RESNET8, head=dict(
            RESNET8['head'], num_classes=4)))
    ckpt = tmp_path / 'classifier.pth'
    torch.save({'meta': {'cfg': 'x = 1\n'},
                'state_dict': classifier.state_dict()}, ckpt)
    with pytest.raises(ValueError) as e:
        export_backbone(str(ckpt), 0, str(tmp_path / 'out.pth'))
    message = str(e.value)
    assert str(ckpt) in message and 'not a cohort checkpoint' in message
    assert "prefix='backbone.'" in message and "'backbone'" in message


def test_config_from_file_overrides_and_is_checked(lmcl, tmp_path):
    bare = tmp_path / 'bare.pth'
    torch.save({'state_dict': lmcl.state}, bare)
    with pytest.raises(ValueError, match='--config'):
        export_backbone(str(bare), 0, str(tmp_path / 'out.pth'))

    config = tmp_path / 'cohort.py'
    config.write_text(lmcl.text)
    export_backbone(str(bare), 0, str(tmp_path / 'out.pth'), str(config))
    assert_same_tensors(
        load(tmp_path / 'out.pth')['state_dict'], backbone_of(lmcl.state, 0))

    # a config whose member 0 is deeper than the trained one is refused
    wrong = Config.fromstring(lmcl.text, '.py')
    wrong.model.peers.members[0].backbone.depth = 14
    config.write_text(wrong.pretty_text)
    with pytest.raises(ValueError) as e:
        export_backbone(str(bare), 0, str(tmp_path / 'wrong.pth'),
                        str(config))
    assert 'does not match its config' in str(e.value)
    assert 'stages.0.1.' in str(e.value)  # 2 blocks, not 1
    assert not (tmp_path / 'wrong.pth').exists()


def test_write_is_atomic(lmcl, monkeypatch):
    out_dir = lmcl.tmp / 'atomic' / 'new'  # created on the way
    out = out_dir / 'member0.pth'
    export_backbone(lmcl.ckpt, 0, str(out))
    before = out.read_bytes()

    def broken_save(obj, f):
        f.write(b'half a file')
        raise OSError('disk full')

    monkeypatch.setattr(export_module.torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        export_backbone(lmcl.ckpt, 1, str(out))
    assert out.read_bytes() == before
    assert os.listdir(out_dir) == ['member0.pth']


def test_export_loads_without_mmmcl_allow_list(lmcl):
    out = lmcl.tmp / 'plain.pth'
    export_backbone(lmcl.ckpt, 0, str(out))
    with no_allow_list():
        # a config object would need the allow-list: the check is real
        refused = lmcl.tmp / 'config_object.pth'
        torch.save({'meta': ConfigDict(a=1)}, refused)
        with pytest.raises(Exception, match='ConfigDict'):
            torch.load(refused, weights_only=True)
        export = torch.load(out, weights_only=True)
        mmengine_export = mmengine_load(str(out), map_location='cpu')
    assert_same_tensors(export['state_dict'], backbone_of(lmcl.state, 0))
    assert_same_tensors(mmengine_export['state_dict'], export['state_dict'])


# --------------------------------------------------------------- transfer
@pytest.fixture(scope='module')
def zoo(tmp_path_factory):
    """One cohort of every supported member type, each member exported."""
    tmp = tmp_path_factory.mktemp('zoo')
    model = build_cohort(INDEPENDENT, ZOO)
    ckpt = tmp / 'zoo.pth'
    save_like_runner(model, INDEPENDENT, ZOO, ckpt)
    exports = {}
    for index in range(len(ZOO)):
        exports[index] = str(tmp / f'member{index}.pth')
        export_backbone(str(ckpt), index, exports[index])
    return SimpleNamespace(tmp=tmp, exports=exports, state=model.state_dict())


def registry_of(scope: str):
    if scope == 'mmdet':
        from mmdet.registry import MODELS as registry
    else:
        from mmseg.registry import MODELS as registry
    return registry


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
@pytest.mark.parametrize(
    'index, backbone', TRANSFER,
    ids=['resnet18', 'resnet50', 'shufflenetv2', 'mobilenetv2',
         'cifar_resnet8'])
def test_export_loads_into_transfer_backbone(zoo, tmp_path, scope, index,
                                             backbone):
    export = zoo.exports[index]
    registry = registry_of(scope)
    # mmengine's own path: Pretrained init, in a process without mmmcl's
    # allow-list (an mmdet / mmseg user's)
    cfg = dict(backbone, init_cfg=dict(type='Pretrained', checkpoint=export))
    with no_allow_list(), DefaultScope.overwrite_default_scope(scope):
        target = registry.build(cfg)
        target.init_weights()
    if backbone['type'] == 'ResNet':  # the package's own class
        assert type(target).__module__.startswith(f'{scope}.models')
    assert_same_tensors(target.state_dict(), backbone_of(zoo.state, index))

    check_backbone_state(load(export)['state_dict'], backbone, registry)
    config = write_config(tmp_path / 'transfer.py', scope, cfg)
    result = check_export_against_config(export, config)
    assert result['num_tensors'] == len(target.state_dict())
    assert result['target'].endswith(type(target).__name__)


def test_mmmcl_prefix_does_not_resolve_from_mmdet(zoo):
    """mmmcl's nodes are children of mmpretrain's, grandchildren of
    MMEngine's roots; ``Registry.get`` looks a ``scope.X`` type up only in
    its own children and the root's direct children, so mmdet's registry
    never reaches ``mmmcl``. ``_scope_='mmmcl'`` does: switching scope
    searches the whole tree (covered above)."""
    from mmdet.registry import MODELS as mmdet_models
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert mmdet_models.get('mmmcl.CifarResNet') is None
    state = load(zoo.exports[0])['state_dict']
    with pytest.raises(KeyError, match=r"dict\(_scope_='mmmcl', "
                       r"type='CifarResNet'"):
        check_backbone_state(
            state, dict(type='mmmcl.CifarResNet', depth=8), mmdet_models)


def test_resnet18_against_resnet50_is_refused(zoo, tmp_path):
    config = write_config(tmp_path / 'r50.py', 'mmdet',
                          dict(type='ResNet', depth=50))
    with pytest.raises(ValueError) as e:
        check_export_against_config(zoo.exports[1], config)
    message = str(e.value)
    assert zoo.exports[1] in message and config in message
    assert 'member 1, mmpretrain.ResNet' in message
    assert 'layer1.0.conv3.weight' in message  # missing
    assert 'layer1.0.conv1.weight: (64, 64, 3, 3) vs (64, 64, 1, 1)' \
        in message
    assert 'architectures differ' in message


def test_plain_stem_against_deep_stem_is_refused(zoo):
    from mmseg.registry import MODELS as mmseg_models
    state = load(zoo.exports[1])['state_dict']
    with pytest.raises(ValueError) as e:
        check_backbone_state(state, dict(type='ResNetV1c', depth=18),
                             mmseg_models)
    message = str(e.value)
    assert 'missing (in the target, not the weights) [18]: stem.0.weight' \
        in message
    assert 'unexpected (in the weights, not the target) [6]: conv1.weight' \
        in message
    assert 'deep stem' in message and '`ResNet`' in message


def test_same_named_class_of_another_package_is_refused(zoo):
    from mmdet.registry import MODELS as mmdet_models
    state = load(zoo.exports[4])['state_dict']
    with pytest.raises(ValueError) as e:
        check_backbone_state(state, dict(type='MobileNetV2'), mmdet_models)
    message = str(e.value)
    assert 'layer1.0.depthwise_conv.conv.weight' in message
    assert "type='mmpretrain.MobileNetV2'" in message


# ------------------------------------------------------------------- hook
class FirstEpochIsBest(Hook):
    """Makes validation scores fall, so the best checkpoint is epoch 1's
    and the final weights are not the best ones."""

    priority = 'NORMAL'  # before the CheckpointHook (VERY_LOW)

    def after_val_epoch(self, runner, metrics=None) -> None:
        metrics['ensemble/accuracy/top1'] = 100. - runner.epoch


def tiny_cfg(work_dir: Path) -> Config:
    """The MNIST-5k DML config: ResNet-8 members, 2 epochs of 3
    iterations, a validation after each."""
    cfg = Config.fromfile(DML_CONFIG)
    for member_cfg in cfg.model.peers.members:
        member_cfg.backbone.depth = 8
    cfg.train_dataloader.batch_size = 20
    cfg.train_dataloader.dataset.num_per_class = 6
    cfg.train_dataloader.batch_sampler.num_per_class = 2
    cfg.val_dataloader.dataset.num_per_class = 2
    cfg.param_scheduler[1].T_max = 1
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
    cfg.custom_hooks = [dict(type='ExportBackbonesHook')]
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('hook') / 'work'
    runner = Runner.from_cfg(tiny_cfg(work_dir))
    runner.register_hook(FirstEpochIsBest())
    runner.train()
    exports = [load(work_dir / 'backbones' / f'member{i}.pth') for i in (0, 1)]
    return SimpleNamespace(runner=runner, work_dir=work_dir, exports=exports)


def test_hook_exports_every_member_of_the_best_checkpoint(trained):
    best = trained.work_dir / 'best_ensemble_accuracy_top1_epoch_1.pth'
    assert best.is_file()
    best_state = load(best)['state_dict']
    final_state = trained.runner.model.state_dict()
    for i, export in enumerate(trained.exports):
        assert export['meta']['source_checkpoint'] == str(best)
        assert export['meta']['member'] == i
        assert export['meta']['arch']['depth'] == 8
        assert_same_tensors(export['state_dict'], backbone_of(best_state, i))
        assert not all(
            torch.equal(v, final_state[f'peers.members.{i}.backbone.{k}'])
            for k, v in export['state_dict'].items())


def test_hook_last_exports_the_final_weights(trained):
    ExportBackbonesHook(source='last').after_train(trained.runner)
    final_state = trained.runner.model.state_dict()
    for i in (0, 1):
        export = load(trained.work_dir / 'backbones' / f'member{i}.pth')
        assert export['meta']['source_checkpoint'] is None
        assert_same_tensors(export['state_dict'], backbone_of(final_state, i))


def test_hook_without_best_checkpoint_fails_clearly():
    with pytest.raises(ValueError, match="'best', 'last'"):
        ExportBackbonesHook(source='latest')
    hub = MessageHub.get_instance(f'test_export_{uuid.uuid4().hex[:8]}')
    runner = SimpleNamespace(hooks=[CheckpointHook(interval=1)],
                             message_hub=hub, val_loop=object(),
                             train_loop=None)
    with pytest.raises(RuntimeError,
                       match=r'default_hooks\.checkpoint\.save_best'):
        ExportBackbonesHook().before_train(runner)
    runner.hooks = [
        CheckpointHook(interval=1, save_best='acc', rule='greater')
    ]
    ExportBackbonesHook().before_train(runner)
    with pytest.raises(RuntimeError, match='No best checkpoint'):
        ExportBackbonesHook().after_train(runner)
