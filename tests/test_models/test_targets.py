"""The online-KD targets against transcriptions of their reference code
(``mmmcl/testing/online_kd_reference.py``), in float64 on the same weights,
and where gradients reach."""
import pytest
import torch
import torch.nn.functional as F

from mmmcl.models.losses import LogitKDLoss
from mmmcl.models.utils import PeerOutputs
from mmmcl.registry import MODELS
from mmmcl.testing import online_kd_reference as ref
from mmmcl.utils import register_all_modules

B, C, N = 6, 5, 3


@pytest.fixture(autouse=True)
def float64():
    register_all_modules()
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)


def outputs_of(logits=(), feats=(), maps=(), trunk=(), labels=None):
    """PeerOutputs with only what a target reads."""
    return PeerOutputs(maps=list(maps), feats=list(feats),
                       logits=list(logits), trunk=list(trunk), labels=labels)


def peer_logits(n=N, requires_grad=True):
    return [torch.randn(B, C, requires_grad=requires_grad) for _ in range(n)]


def test_peer_mean_is_cl_ilr_and_detached():
    logits = peer_logits(4)
    target = MODELS.build(dict(type='PeerMeanTarget', exclude_self=True))
    ours = target(outputs_of(logits))
    for a, b in zip(ours, ref.cl_ilr_targets(logits)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-15)
        assert not a.requires_grad
    everyone = MODELS.build(dict(type='PeerMeanTarget'))(outputs_of(logits))
    torch.testing.assert_close(everyone, sum(logits).detach() / 4)
    live = MODELS.build(dict(type='PeerMeanTarget', detach=False))(
        outputs_of(logits))
    live.sum().backward()
    for z in logits:
        torch.testing.assert_close(z.grad, torch.full((B, C), 0.25))


def test_min_logit_by_hand():
    logits = [torch.tensor([[2., 0., 1.]]), torch.tensor([[0., 1., 3.]])]
    labels = torch.tensor([0])
    # shifted: peer 0 [0, -2, -1], peer 1 [0, 1, 3]; class-wise min
    target = MODELS.build(dict(type='MinLogitTarget'))(
        outputs_of(logits, labels=labels))
    torch.testing.assert_close(target, torch.tensor([[0., -2., -1.]]))
    logits = peer_logits()
    labels = torch.randint(0, C, (B, ))
    target = MODELS.build(dict(type='MinLogitTarget'))(
        outputs_of(logits, labels=labels))
    assert not target.requires_grad
    assert torch.all(target.gather(1, labels[:, None]) == 0)
    for z in logits:  # never above any peer's shifted logits
        assert torch.all(target <= z - z.gather(1, labels[:, None]) + 1e-12)


def test_gated_ensemble_is_one_and_the_gate_learns_from_its_ce():
    gate = MODELS.build(dict(type='GatedEnsembleTarget', in_channels=8,
                             num_branches=N)).train()
    trunk = torch.randn(B, 8, 4, 4)
    logits = peer_logits()
    ensemble = gate(outputs_of(logits, trunk=[trunk]))
    weights = gate.gate(trunk)
    expected = ref.one_gated_ensemble(trunk, logits, gate.fc.weight,
                                      gate.fc.bias, gate.bn)
    torch.testing.assert_close(ensemble, expected, rtol=0, atol=1e-13)
    torch.testing.assert_close(weights.sum(1), torch.ones(B))
    labels = torch.randint(0, C, (B, ))
    F.cross_entropy(ensemble, labels).backward()
    assert gate.fc.weight.grad.abs().sum() > 0
    # the branches mimic the detached ensemble: no gradient to the gate
    gate.zero_grad()
    ensemble = gate(outputs_of(logits, trunk=[trunk]))
    LogitKDLoss(3.)(logits[0], ensemble.detach()).backward()
    assert gate.fc.weight.grad is None or not gate.fc.weight.grad.any()


def test_peer_attention_is_okddip_and_not_detached():
    attention = MODELS.build(dict(type='PeerAttentionTarget',
                                  in_channels=16))
    assert attention.query.out_features == 2  # D // 8
    feats = [torch.randn(B, 16, requires_grad=True) for _ in range(N)]
    logits = peer_logits()
    targets = attention(outputs_of(logits, feats=feats))
    weights = attention.attention(feats)
    expected = ref.okddip_attention_targets(feats, logits,
                                            attention.query.weight,
                                            attention.key.weight)
    for i in range(N):
        torch.testing.assert_close(targets[i], expected[:, :, i], rtol=0,
                                   atol=1e-13)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, N))
    # peer 0's KD term reaches the projections and the other peers
    LogitKDLoss(3., target_eps=1e-7)(logits[0], targets[0]).backward()
    assert attention.query.weight.grad.abs().sum() > 0
    assert attention.key.weight.grad.abs().sum() > 0
    assert logits[1].grad.abs().sum() > 0 and feats[2].grad.abs().sum() > 0


def test_fusion_is_ffl():
    fusion = MODELS.build(dict(type='FusionTarget', in_channels=[4, 4],
                               num_classes=C)).train()
    maps = [torch.randn(B, 4, 8, 8, requires_grad=True) for _ in range(2)]
    expected = ref.ffl_fusion(maps, fusion.depthwise.conv.weight,
                              fusion.depthwise.bn,
                              fusion.pointwise.conv.weight,
                              fusion.pointwise.bn, fusion.fc.weight,
                              fusion.fc.bias)
    logits = fusion(outputs_of(maps=maps))
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-13)
    logits.sum().backward()  # its input is not detached
    assert maps[0].grad.abs().sum() > 0


def test_logit_kd_is_each_reference_kl():
    student, teacher = peer_logits(2)
    one = LogitKDLoss(3., target_eps=1e-7)
    torch.testing.assert_close(
        one(student, teacher.detach()), ref.one_kl_loss(student, teacher),
        rtol=1e-14, atol=0)
    torch.testing.assert_close(
        one(student, teacher), ref.okddip_kl_loss(student, teacher),
        rtol=1e-14, atol=0)
    # OKDDip's target is live: the gradients into it agree too
    ours = torch.autograd.grad(one(student, teacher), (student, teacher))
    theirs = torch.autograd.grad(ref.okddip_kl_loss(student, teacher),
                                 (student, teacher))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(
        LogitKDLoss(2.)(student, teacher), ref.cl_ilr_kl_loss(
            student, teacher), rtol=1e-14, atol=0)


def test_concat_feature_target_is_a_linear_on_the_joint_feature():
    teacher = MODELS.build(dict(type='ConcatFeatureTarget',
                                in_channels=[4, 6], num_classes=C))
    feats = [torch.randn(B, 4, requires_grad=True), torch.randn(B, 6)]
    logits = teacher(outputs_of(feats=feats))
    w, b = teacher.fc.weight, teacher.fc.bias
    expected = feats[0] @ w[:, :4].T + feats[1] @ w[:, 4:].T + b
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-13)
    logits.sum().backward()  # its CE reaches the peers
    assert feats[0].grad.abs().sum() > 0
