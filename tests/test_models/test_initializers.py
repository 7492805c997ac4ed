"""mmmcl's strict ``Pretrained`` init: what it loads, what it refuses."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from mmmcl.models.initializers import StrictPretrainedInit

BACKBONE = dict(_scope_='mmmcl', type='CifarResNet', depth=8,
                out_indices=(0, 1, 2))


def build(scope: str, cfg: dict) -> torch.nn.Module:
    """Build ``cfg`` from ``scope``'s registry, as that package's tools do
    (the default scope stays ``scope`` while the model initialises)."""
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmmcl.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


def random_state(module: torch.nn.Module, seed: int = 1) -> dict:
    """The module's state dict with every float tensor random (no value
    matches an initialisation by chance)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.rand(v.shape, generator=g) + 0.5
        if v.is_floating_point() else v.clone()
        for k, v in module.state_dict().items()
    }


def init(scope: str, backbone: dict, **init_cfg) -> torch.nn.Module:
    """Build ``backbone`` with mmmcl's init and run ``init_weights`` under
    ``scope``, as a runner of that scope does."""
    cfg = dict(backbone,
               init_cfg=dict(_scope_='mmmcl', type='Pretrained', **init_cfg))
    model = build(scope, cfg)
    with DefaultScope.overwrite_default_scope(scope):
        model.init_weights()
    return model


def assert_loaded(model: torch.nn.Module, state: dict) -> None:
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


@pytest.fixture
def weights():
    return random_state(build('mmmcl', BACKBONE))


@pytest.fixture
def log_lines():
    """What the current logger writes while the test runs."""
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmmcl'])
@pytest.mark.parametrize('layout', ['export', 'plain', 'runner'])
def test_loads_each_layout_under_each_scope(scope, layout, weights, tmp_path,
                                            log_lines):
    """``_scope_='mmmcl'`` picks this init under mmdet's and mmseg's
    default scopes (``'mmmcl.Pretrained'`` would not resolve there)."""
    path = tmp_path / 'weights.pth'
    if layout == 'export':
        saved = dict(state_dict=weights, meta=dict(member=0, arch=BACKBONE))
        prefix = None
    elif layout == 'plain':
        saved, prefix = weights, None
    else:  # a whole model's checkpoint, DDP-wrapped, with a prefix
        saved = dict(state_dict={
            f'module.backbone.{k}': v
            for k, v in weights.items()
        }, meta=dict(epoch=3))
        prefix = 'backbone.'
    torch.save(saved, path)
    model = init(scope, BACKBONE, checkpoint=str(path), prefix=prefix)
    assert_loaded(model, weights)
    n = len(weights)
    assert any(f"Loaded '{path}'" in line and f'{n} of {n} tensors, 0 '
               'missing, 0 unexpected' in line for line in log_lines)


def test_mmpretrain_backbone_keeps_the_loaded_weights(tmp_path):
    """mmpretrain's ShuffleNetV2 re-initialises itself after its init_cfg
    unless that init's type is named 'Pretrained'."""
    backbone = dict(type='mmpretrain.ShuffleNetV2', widen_factor=0.5)
    state = random_state(build('mmdet', backbone))
    torch.save(state, tmp_path / 'shufflenet.pth')
    model = init('mmdet', backbone,
                 checkpoint=str(tmp_path / 'shufflenet.pth'))
    assert_loaded(model, state)


def test_no_checkpoint_says_how_to_give_one_or_choose_scratch():
    with pytest.raises(ValueError) as e:
        init('mmdet', BACKBONE, checkpoint=None)
    message = str(e.value)
    assert 'CifarResNet' in message and 'checkpoint=None' in message
    assert '--cfg-options model.backbone.init_cfg.checkpoint=' in message
    assert 'from scratch, model.backbone.init_cfg=None' in message


def test_wrong_path_names_the_path(tmp_path):
    path = tmp_path / 'no' / 'member0.pth'
    with pytest.raises(FileNotFoundError) as e:
        init('mmseg', BACKBONE, checkpoint=str(path))
    assert repr(str(path)) in str(e.value)
    assert 'model.backbone.init_cfg.checkpoint=PATH' in str(e.value)


def test_other_depth_names_the_keys_and_the_file(weights, tmp_path):
    path = tmp_path / 'member0.pth'
    torch.save(dict(state_dict=weights, meta={}), path)
    with pytest.raises(ValueError) as e:
        init('mmdet', dict(BACKBONE, depth=14), checkpoint=str(path))
    message = str(e.value)
    assert message.startswith(f"'{path}': The weights do not load into "
                              'CifarResNet (mmmcl.models.backbones.')
    # depth 14 has a second block per stage, which depth 8 lacks
    assert '36 missing keys, 0 unexpected keys' in message
    assert 'stages.0.1.conv1.weight' in message
    assert 'Likely fix' in message


def test_shape_mismatch_raises_even_when_not_strict(weights, tmp_path):
    weights['stem.0.weight'] = torch.zeros(16, 1, 3, 3)
    torch.save(weights, tmp_path / 'grey.pth')
    with pytest.raises(ValueError) as e:
        init('mmdet', BACKBONE, checkpoint=str(tmp_path / 'grey.pth'),
             strict=False)
    assert 'stem.0.weight: (16, 1, 3, 3) vs (16, 3, 3, 3)' in str(e.value)
    assert 'strict=False allows only missing and unexpected' in str(e.value)


def test_not_strict_loads_the_rest_and_warns(weights, tmp_path, log_lines):
    dropped = 'stages.2.0.bn2.weight'
    partial = {k: v for k, v in weights.items() if k != dropped}
    partial['extra.weight'] = torch.ones(1)
    torch.save(partial, tmp_path / 'partial.pth')
    with pytest.raises(ValueError, match=r'missing \(in the target'):
        init('mmdet', BACKBONE, checkpoint=str(tmp_path / 'partial.pth'))
    model = init('mmdet', BACKBONE, checkpoint=str(tmp_path / 'partial.pth'),
                 strict=False)
    loaded = model.state_dict()
    for key, value in partial.items():
        if key != 'extra.weight':
            assert torch.equal(loaded[key], value), key
    assert not torch.equal(loaded[dropped], weights[dropped])
    warning = next(line for line in log_lines if line.startswith('Loaded'))
    assert '1 missing, 1 unexpected' in warning
    assert dropped in warning and 'extra.weight' in warning


def test_refuses_what_is_not_weights(tmp_path):
    torch.save(dict(state_dict=dict(a=[1, 2])), tmp_path / 'odd.pth')
    with pytest.raises(ValueError, match='`a` is a list'):
        StrictPretrainedInit(str(tmp_path / 'odd.pth'))(torch.nn.Linear(1, 1))
    torch.save(dict(w=torch.ones(1)), tmp_path / 'w.pth')
    with pytest.raises(ValueError, match="prefix 'backbone.'"):
        StrictPretrainedInit(str(tmp_path / 'w.pth'),
                             prefix='backbone.')(torch.nn.Linear(1, 1))
