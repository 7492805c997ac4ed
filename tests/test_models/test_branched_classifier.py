"""BranchedClassifier: a split is exact, ILR rescales the gradient at the
splits, views reach their peers, and any peer exports as a plain backbone
that mmpretrain's ResNet loads strictly."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmcl.apis import save_backbone
from mmmcl.registry import MODELS
from mmmcl.utils import register_all_modules

CIFAR8 = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(type='mmpretrain.LinearClsHead', in_channels=64, num_classes=5))
RESNET18 = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmpretrain.ResNet', depth=18, out_indices=(3, )),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(type='mmpretrain.LinearClsHead', in_channels=512, num_classes=5))


@pytest.fixture(autouse=True)
def scope():
    register_all_modules()
    with DefaultScope.overwrite_default_scope('mmmcl'):
        yield


def tree(classifier=CIFAR8, **kwargs):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='BranchedClassifier',
                              classifier=copy.deepcopy(classifier), **kwargs))
    model.init_weights()
    return model.eval()


def plain_features(model, peer, x, classifier=CIFAR8):
    """Peer ``peer`` run as the unsplit classifier: its exported backbone
    in a fresh copy of the classifier."""
    backbone = MODELS.build(classifier['backbone'])
    backbone.load_state_dict(model.backbone_state_dict(peer), strict=True)
    backbone.eval()  # mmpretrain's ResNet.train returns None
    return backbone(x)[-1]


@pytest.mark.parametrize('classifier, kwargs', [
    (CIFAR8, dict(branch_at=(2, ), num_branches=(3, ))),  # ONE
    (CIFAR8, dict(branch_at=(1, 2), num_branches=(2, 2))),  # CL-ILR
    (RESNET18, dict(branch_at=(3, ), num_branches=(2, ))),
], ids=['one', 'cl_ilr', 'resnet18'])
def test_split_is_exact(classifier, kwargs):
    model = tree(classifier, **kwargs)
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert len(out) == model.num_peers
    for peer in range(model.num_peers):
        torch.testing.assert_close(
            out.maps[peer], plain_features(model, peer, x, classifier),
            rtol=0, atol=0)
    # the branches are fresh copies: no two peers alike
    assert not torch.equal(out.logits[0], out.logits[1])
    # peer 0 is the classifier itself
    torch.testing.assert_close(
        out.logits[0], model.classifier(x, mode='tensor'), rtol=0, atol=0)


def test_fresh_branches_are_initialised_like_the_backbone():
    model = tree(branch_at=(2, ), num_branches=(3, ))
    own = model.classifier.backbone.stages[2][0].conv1.weight.std().item()
    copy_ = model.nodes['1'].layers[0][0].conv1.weight.std().item()
    # Kaiming fan_out (std sqrt(2 / (64 * 9))), not PyTorch's default
    assert own == pytest.approx(copy_, rel=0.15)
    assert copy_ == pytest.approx((2 / (64 * 9))**0.5, rel=0.15)
    head = model.leaf_heads['1'].fc.weight.std().item()
    assert head == pytest.approx(0.01, rel=0.2)


def test_ilr_divides_the_gradient_at_each_split_by_its_children():
    plain = tree(branch_at=(1, 2), num_branches=(2, 2))
    ilr = tree(branch_at=(1, 2), num_branches=(2, 2), grad_rescale=True)
    ilr.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    for model in (plain, ilr):
        model.zero_grad()
        sum(z.square().sum() for z in model(x).logits).backward()
    stem = 'classifier.backbone.stem.0.weight'
    node = 'nodes.1.layers.0.0.conv1.weight'  # stage 1 of branch 1
    g_plain = dict(plain.named_parameters())
    g_ilr = dict(ilr.named_parameters())
    # 2 children at each of the splits above the stem: 1/4; above node 1: 1/2
    torch.testing.assert_close(g_ilr[stem].grad, g_plain[stem].grad / 4)
    torch.testing.assert_close(g_ilr[node].grad, g_plain[node].grad / 2)
    leaf = 'nodes.1_1.layers.0.0.conv1.weight'  # nothing splits below
    torch.testing.assert_close(g_ilr[leaf].grad, g_plain[leaf].grad)


def test_each_peer_sees_its_view():
    model = tree(branch_at=(2, ), num_branches=(3, ))
    views = [torch.randn(2, 3, 32, 32) for _ in range(3)]
    out = model(views)
    for peer, view in enumerate(views):
        torch.testing.assert_close(out.maps[peer], model(view).maps[peer])
    torch.testing.assert_close(out.trunk[0], model(views[0]).trunk[0])


def test_bad_split_names_the_field():
    with pytest.raises(ValueError, match='model.peers.branch_at'):
        tree(branch_at=(3, ), num_branches=(2, ))
    with pytest.raises(ValueError, match='each >= 2'):
        tree(branch_at=(1, ), num_branches=(1, ))
    with pytest.raises(IndexError, match='4 peers'):
        tree(branch_at=(1, 2), num_branches=(2, 2)).leaf_path(4)


def test_export_of_a_peer_loads_into_the_plain_backbone(tmp_path):
    cfg = Config(dict(model=dict(
        type='CohortDistiller',
        num_classes=5,
        peers=dict(type='BranchedClassifier', classifier=CIFAR8,
                   branch_at=(1, 2), num_branches=(2, 2)),
        teachers=dict(others=dict(
            target=dict(type='PeerMeanTarget', exclude_self=True))),
        distill=[dict(teacher='others')])))
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    x = torch.randn(2, 3, 32, 32)
    maps = model.eval().peers(x).maps
    for peer in (0, 3):
        out = str(tmp_path / f'peer{peer}.pth')
        save_backbone(model.state_dict(), cfg, peer, out)
        export = torch.load(out, weights_only=True)
        backbone = MODELS.build(export['meta']['arch'])
        backbone.load_state_dict(export['state_dict'], strict=True)
        backbone.eval()
        torch.testing.assert_close(backbone(x)[-1], maps[peer])
    with pytest.raises(ValueError, match='no member 4.*0 to 3'):
        save_backbone(model.state_dict(), cfg, 4, str(tmp_path / 'x.pth'))
