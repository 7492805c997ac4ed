import copy

import pytest
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from mmmcl.models.backbones import (CifarResNet, CifarShuffleNetV2,
                                    CifarWideResNet)
from mmmcl.registry import MODELS

# (class, kwargs, channels of the three outputs, side of the three outputs)
CASES = {
    'resnet20': (CifarResNet, dict(depth=20), [16, 32, 64], [32, 16, 8]),
    'resnet32': (CifarResNet, dict(depth=32), [16, 32, 64], [32, 16, 8]),
    'resnet56': (CifarResNet, dict(depth=56), [16, 32, 64], [32, 16, 8]),
    'resnet110': (CifarResNet, dict(depth=110), [16, 32, 64], [32, 16, 8]),
    'resnet110-bottleneck':
    (CifarResNet, dict(depth=110, block='bottleneck'), [64, 128,
                                                        256], [32, 16, 8]),
    'wrn16-1': (CifarWideResNet, dict(depth=16,
                                      widen_factor=1), [16, 32,
                                                        64], [32, 16, 8]),
    'wrn16-2': (CifarWideResNet, dict(depth=16), [32, 64, 128], [32, 16, 8]),
    'wrn40-2': (CifarWideResNet, dict(depth=40), [32, 64, 128], [32, 16, 8]),
    'shufflev2-0.5':
    (CifarShuffleNetV2, dict(widen_factor=0.5), [48, 96, 1024], [16, 8, 4]),
    'shufflev2-1.0':
    (CifarShuffleNetV2, dict(widen_factor=1.0), [116, 232, 1024], [16, 8, 4]),
    'shufflev2-1.5':
    (CifarShuffleNetV2, dict(widen_factor=1.5), [176, 352, 1024], [16, 8, 4]),
    'shufflev2-2.0': (CifarShuffleNetV2, dict(widen_factor=2.0),
                      [224, 488, 2048], [16, 8, 4]),
}
ONE_PER_CLASS = ['resnet32', 'wrn16-2', 'shufflev2-0.5']


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _build(name, **kwargs):
    cls, base, _, _ = CASES[name]
    return cls(**base, **kwargs)


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # tiny inputs: one thread avoids oversubscription on a busy 2-core box
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('name', list(CASES))
def test_output_shapes(name):
    cls, kwargs, channels, sides = CASES[name]
    model = cls(**kwargs, out_indices=(0, 1, 2))
    model.init_weights()
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 32, 32))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(2, c, s, s)
                                              for c, s in zip(channels, sides)]
    assert model.out_channels == channels
    # the default returns only the last stage, post_stages included
    default = cls(**kwargs)
    assert default.out_indices == (2, )
    assert isinstance(default.stages, nn.ModuleList)
    assert len(default.stages) == 3
    assert all(isinstance(s, nn.Sequential) for s in default.stages)


def _shufflenet_v2_params(widths, final, stem=24, units=(3, 7, 3)):
    """Parameters of the reference CIFAR ShuffleNetV2 (convs without bias,
    BN with weight and bias), counted from its layer list."""

    def conv_bn(cin, cout, k, depthwise=False):
        return k * k * (1 if depthwise else cin) * cout + 2 * cout

    total = conv_bn(3, stem, 3)
    cin = stem
    for width, n in zip(widths, units):
        mid = width // 2
        total += conv_bn(cin, cin, 3, True) + conv_bn(cin, mid, 1)
        total += (
            conv_bn(cin, mid, 1) + conv_bn(mid, mid, 3, True) +
            conv_bn(mid, mid, 1))
        total += n * (2 * conv_bn(mid, mid, 1) + conv_bn(mid, mid, 3, True))
        cin = width
    return total + conv_bn(cin, final, 1)


# Published counts with a 100-class fc (He et al. 2016; Zagoruyko &
# Komodakis 2016; WRN-40-2 2.26M as CRD's CIFAR-100 table gives it), minus
# that fc.
@pytest.mark.parametrize('name,published,fc_in', [
    ('resnet32', 0.47e6, 64),
    ('resnet56', 0.86e6, 64),
    ('resnet110', 1.73e6, 64),
    ('wrn16-2', 0.70e6, 128),
    ('wrn40-2', 2.26e6, 128),
])
def test_param_counts_match_published(name, published, fc_in):
    expected = published - (fc_in * 100 + 100)
    assert _count(_build(name)) == pytest.approx(expected, rel=0.02)


def test_param_counts_exact():
    # option-B shortcuts: ResNet-32 = 0.4635M + the 1x1 conv + BN shortcuts
    assert _count(_build('resnet32')) == 466256
    # the authors' bottleneck ResNet-110: about 1.2M with the fc (256 * 100)
    assert _count(_build('resnet110-bottleneck')) + 25700 == pytest.approx(
        1.17e6, rel=0.02)
    for factor, (widths, final) in CifarShuffleNetV2.arch_settings.items():
        model = CifarShuffleNetV2(widen_factor=factor)
        assert _count(model) == _shufflenet_v2_params(widths, final)


@pytest.mark.parametrize('cls,kwargs,match', [
    (CifarResNet, dict(depth=18), r'depth.*6n\+2.*20, 32'),
    (CifarResNet, dict(depth=33), 'depth=33'),
    (CifarResNet, dict(depth=2), 'depth'),
    (CifarResNet, dict(depth=32, block='bottleneck'), r'depth.*9n\+2'),
    (CifarResNet, dict(depth=32, block='basicblock'), 'block'),
    (CifarWideResNet, dict(depth=18), r'depth.*6n\+4'),
    (CifarWideResNet, dict(depth=4), 'depth'),
    (CifarWideResNet, dict(depth=16, widen_factor=0), 'widen_factor'),
    (CifarShuffleNetV2, dict(widen_factor=0.75), r'widen_factor.*0\.5'),
])
def test_invalid_arch(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize('name', ONE_PER_CLASS)
def test_out_indices(name):
    assert _build(name, out_indices=-1).out_indices == (2, )
    assert _build(name, out_indices=(-1, 0, 1)).out_indices == (0, 1, 2)
    assert _build(name, out_indices=[2, -3]).out_indices == (0, 2)
    for bad in [(3, ), (0, -4), 5]:
        with pytest.raises(ValueError, match=r'out_indices.*\[0, 1, 2\]'):
            _build(name, out_indices=bad)
    with pytest.raises(ValueError, match='out_indices'):
        _build(name, out_indices=())
    with pytest.raises(ValueError, match='frozen_stages'):
        _build(name, frozen_stages=4)


def test_build_from_config():
    model = MODELS.build(dict(type='CifarResNet', depth=32))
    assert isinstance(model, CifarResNet)
    assert _count(model) == 466256
    model = MMPRETRAIN_MODELS.build(dict(type='mmmcl.CifarResNet', depth=32))
    assert isinstance(model, CifarResNet)
    for cfg, cls in [(dict(type='mmmcl.CifarWideResNet',
                           depth=40), CifarWideResNet),
                     (dict(type='mmmcl.CifarShuffleNetV2',
                           widen_factor=0.5), CifarShuffleNetV2)]:
        assert isinstance(MMPRETRAIN_MODELS.build(cfg), cls)


@pytest.mark.parametrize(
    'name', ONE_PER_CLASS + ['resnet110-bottleneck', 'shufflev2-2.0'])
def test_first_block_copies_form_a_branch(name):
    """Copies of stages[k][0] (one block per stage) and of whole stages run
    on the previous stage's output and end like the backbone."""
    model = _build(name, out_indices=(0, 1, 2))
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 16, 16))
        for k in (1, 2):
            for depth in ('one_block', 'full'):
                layers = [
                    copy.deepcopy(s[0] if depth == 'one_block' else s)
                    for s in model.stages[k:]
                ]
                branch = nn.Sequential(*layers,
                                       copy.deepcopy(model.post_stages))
                branch.eval()
                assert branch(outs[k - 1]).shape == outs[-1].shape
    # a stage's later blocks keep the stride and the channels
    for stage, c in zip(model.stages, model.out_channels[:2]):
        for block in stage[1:]:
            y = torch.randn(1, c, 4, 4)
            assert block.eval()(y).shape == y.shape


@pytest.mark.parametrize('name', ONE_PER_CLASS)
def test_post_stages_applied_to_last_output_only(name):
    model = _build(name, out_indices=(0, 1, 2)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        outs = model(x)
        y = model.stem(x)
        raw = []
        for stage in model.stages:
            y = stage(y)
            raw.append(y)
    assert torch.allclose(outs[0], raw[0])
    assert torch.allclose(outs[1], raw[1])
    assert torch.allclose(outs[2], model.post_stages(raw[2]))
    if name == 'resnet32':
        assert isinstance(model.post_stages, nn.Identity)
    elif name == 'wrn16-2':
        # the pre-activation stages end without BN + ReLU
        assert outs[2].min() >= 0 and raw[2].min() < 0
    else:
        # the 1x1 conv to 1024 channels
        assert raw[2].shape[1] == 192 and outs[2].shape[1] == 1024


def test_wrn_block_preactivates_the_shortcut():
    # as in Zagoruyko's code: a block that changes the shape feeds
    # relu(bn1(x)) to its 1x1 shortcut; the others add the raw input
    model = CifarWideResNet(depth=16).eval()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            nn.init.uniform_(m.running_mean, -1, 1)
            nn.init.uniform_(m.bias, -1, 1)
    for block in (model.stages[1][0], model.stages[1][1]):
        x = torch.randn(2, block.conv1.in_channels, 8, 8)
        act = torch.relu(block.bn1(x))
        res = block.conv2(torch.relu(block.bn2(block.conv1(act))))
        identity = x if block.shortcut is None else block.shortcut(act)
        with torch.no_grad():
            assert torch.allclose(block(x), res + identity, atol=1e-5)


def test_shuffle_unit_keeps_half_and_interleaves():
    model = CifarShuffleNetV2(widen_factor=0.5).eval()
    unit = model.stages[1][1]
    x = torch.randn(2, 96, 8, 8)
    with torch.no_grad():
        out = unit(x)
        assert torch.equal(out[:, 0::2], x[:, :48])
        assert torch.allclose(out[:, 1::2], unit.branch2(x[:, 48:]))
        down = model.stages[1][0]
        y = torch.randn(2, 48, 16, 16)
        out = down(y)
        assert torch.allclose(out[:, 0::2], down.branch1(y))
        assert torch.allclose(out[:, 1::2], down.branch2(y))


def test_resnet_option_b_shortcut():
    model = CifarResNet(depth=20)
    assert model.stages[0][0].downsample is None
    for stage in model.stages[1:]:
        conv, norm = stage[0].downsample
        assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
        assert isinstance(norm, _BatchNorm)
        assert all(b.downsample is None for b in stage[1:])


def test_wrn_shortcuts():
    # a 1x1 conv shortcut only where the channels or the stride change
    model = CifarWideResNet(depth=16, widen_factor=1)
    assert model.stages[0][0].shortcut is None
    assert all(s[0].shortcut is not None for s in model.stages[1:])
    assert all(b.shortcut is None for s in model.stages for b in s[1:])
    assert CifarWideResNet(depth=16).stages[0][0].shortcut is not None
    assert isinstance(model.stem, nn.Conv2d)


@pytest.mark.parametrize('name', ONE_PER_CLASS)
def test_init_and_norm_eval(name):
    model = _build(name)
    model.init_weights()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(torch.all(m.weight == 1) for m in bns)
    assert all(torch.all(m.bias == 0) for m in bns)
    # Kaiming, fan-out, normal: std sqrt(2 / (k * k * C_out)), not torch's
    # default (at most 0.4 times that here)
    convs = [
        m for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.groups == 1
    ]
    conv = max(convs, key=lambda m: m.weight.numel())
    fan_out = conv.weight[0].numel() // conv.in_channels * conv.out_channels
    assert conv.weight.std().item() == pytest.approx(
        (2 / fan_out)**0.5, rel=0.15)

    model.train()
    assert all(m.training for m in bns)
    model = _build(name, norm_eval=True)
    model.train()
    assert model.training
    assert not any(m.training
                   for m in model.modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('name', ONE_PER_CLASS)
def test_frozen_stages(name):
    model = _build(name, frozen_stages=1)
    model.train()
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert not model.stages[0].training
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert model.stages[1].training
    model = _build(name, frozen_stages=3)
    assert not any(p.requires_grad for p in model.parameters())
