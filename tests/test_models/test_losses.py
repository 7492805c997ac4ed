import math

import pytest
import torch
import torch.nn.functional as F

from mmmcl.models.losses import InBatchContrastLoss
from mmmcl.registry import MODELS
from mmmcl.testing import naive_inbatch_contrast

TAU, T = 0.5, 2.0
LABELS = [0, 0, 1, 1]
# Two nets, one stage each, 2-d unit embeddings of 4 images (2 classes).
A = [(1., 0.), (0.6, 0.8), (0., 1.), (-0.8, 0.6)]
B = [(0.8, 0.6), (1., 0.), (-0.6, 0.8), (0., -1.)]


def _dot(u, v):
    return sum(x * y for x, y in zip(u, v))


def _logits(x, y):
    return [[_dot(u, v) / TAU for v in y] for u in x]


def _supcon_by_hand(logits, weights, mask_self):
    """-(1/B) sum_r w_r mean over positives of log p, scalar loops."""
    total = 0.
    for r, row in enumerate(logits):
        cols = [c for c in range(4) if not (mask_self and c == r)]
        log_den = math.log(sum(math.exp(row[c]) for c in cols))
        pos = [c for c in cols if LABELS[c] == LABELS[r]]
        total += weights[r] * sum(row[c] - log_den for c in pos) / len(pos)
    return -total / 4


def _kl_by_hand(student, teacher, weights):
    """T^2/B sum_r w_r KL(softmax(teacher_r/T) || softmax(student_r/T))."""
    total = 0.
    for r in range(4):
        zs = sum(math.exp(v / T) for v in student[r])
        zt = sum(math.exp(v / T) for v in teacher[r])
        kl = 0.
        for c in range(4):
            q = math.exp(teacher[r][c] / T) / zt
            p = math.exp(student[r][c] / T) / zs
            kl += q * math.log(q / p)
        total += weights[r] * kl
    return T**2 * total / 4


@pytest.mark.parametrize('quirk', [True, False])
def test_terms_by_hand(quirk):
    w_ab, w_ba = [1.0, 0.5, 0.25, 2.0], [0.3, 1.0, 0.7, 0.1]
    aa, bb, ab, ba = _logits(A, A), _logits(B, B), _logits(A, B), _logits(
        B, A)
    expected = dict(vcl=0., icl=0., soft_vcl=0., soft_icl=0.)
    # blocks (0, 0, 1, 0) with w_ab and (1, 0, 0, 0) with w_ba
    for (xx, yy, xy, yx), w in (((aa, bb, ab, ba), w_ab), ((bb, aa, ba, ab),
                                                          w_ba)):
        expected['vcl'] += _supcon_by_hand(xx, w, True) + _supcon_by_hand(
            yy, w, True)
        expected['icl'] += _supcon_by_hand(xy, w, quirk) + _supcon_by_hand(
            yx, w, quirk)
        expected['soft_vcl'] += _kl_by_hand(xx, yy, w) + _kl_by_hand(yy, xx, w)
        expected['soft_icl'] += _kl_by_hand(xy, yx, w) + _kl_by_hand(yx, xy, w)

    loss = InBatchContrastLoss(
        tau=TAU, kd_temperature=T, mask_cross_view_self=quirk)
    emb = [[torch.tensor(A, dtype=torch.float64)],
           [torch.tensor(B, dtype=torch.float64)]]
    out = loss(emb, torch.tensor(LABELS),
               torch.tensor([w_ab, w_ba], dtype=torch.float64))
    for key, value in expected.items():
        assert out[key].item() == pytest.approx(value, rel=1e-12), key


def test_quirk_changes_only_icl():
    emb = [[torch.tensor(A)], [torch.tensor(B)]]
    on = InBatchContrastLoss(tau=TAU)(emb, torch.tensor(LABELS))
    off = InBatchContrastLoss(
        tau=TAU, mask_cross_view_self=False)(emb, torch.tensor(LABELS))
    assert on['icl'] != pytest.approx(off['icl'].item())
    for key in ('vcl', 'soft_vcl', 'soft_icl'):
        assert on[key].item() == pytest.approx(off[key].item())


def _random_cohort(num_stages, batch=8, dim=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    emb = [[
        F.normalize(
            torch.randn(batch, dim, generator=gen, dtype=torch.float64),
            dim=1).requires_grad_() for _ in range(s)
    ] for s in num_stages]
    labels = torch.arange(batch // 2).repeat_interleave(2)
    total = sum(num_stages)
    num_blocks = total**2 - sum(s * s for s in num_stages)
    weights = torch.rand(
        num_blocks, batch, generator=gen, dtype=torch.float64)
    return emb, labels, weights.requires_grad_()


@pytest.mark.parametrize('num_stages', [[3, 3], [2, 3, 1], [1, 1, 1]])
@pytest.mark.parametrize('quirk', [True, False])
def test_fused_equals_naive_loop(num_stages, quirk):
    emb, labels, weights = _random_cohort(num_stages)
    leaves = [e for net in emb for e in net] + [weights]
    fused = InBatchContrastLoss(mask_cross_view_self=quirk)(emb, labels,
                                                           weights)
    naive = naive_inbatch_contrast(
        emb, labels, weights, mask_cross_view_self=quirk)
    for key in fused:
        torch.testing.assert_close(fused[key], naive[key], rtol=1e-10, atol=0)
        g_fused = torch.autograd.grad(fused[key], leaves, retain_graph=True)
        g_naive = torch.autograd.grad(naive[key], leaves, retain_graph=True)
        for a, b in zip(g_fused, g_naive):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_gradients_match_finite_differences():
    """VCL and ICL w.r.t. the embeddings (the soft terms stop the gradient
    of their target, so only their weight gradient is a true derivative),
    all four terms w.r.t. the weights."""
    emb, labels, weights = _random_cohort([2, 1], batch=4, dim=3)
    loss = InBatchContrastLoss()
    leaves = [e.detach().requires_grad_() for net in emb for e in net]

    def hard_terms(x0, x1, x2):
        out = loss([[x0, x1], [x2]], labels, weights.detach())
        return out['vcl'] + out['icl']

    def all_terms(w):
        return torch.stack(list(loss(emb, labels, w).values()))

    assert torch.autograd.gradcheck(hard_terms, leaves)
    assert torch.autograd.gradcheck(all_terms, [weights])


def test_none_weights_are_ones():
    emb, labels, weights = _random_cohort([2, 2])
    loss = InBatchContrastLoss()
    ones = torch.ones_like(weights)
    for key, value in loss(emb, labels).items():
        torch.testing.assert_close(value, loss(emb, labels, ones)[key])


def test_bad_input():
    emb, labels, weights = _random_cohort([2, 2])
    with pytest.raises(ValueError, match=r'num_blocks=8, B=8'):
        InBatchContrastLoss()(emb, labels, weights[:3])
    with pytest.raises(ValueError, match='at least 2 nets'):
        InBatchContrastLoss()(emb[:1], labels)
    with pytest.raises(ValueError, match='tau'):
        InBatchContrastLoss(tau=0)


def test_registered():
    loss = MODELS.build(dict(type='InBatchContrastLoss', tau=0.2))
    assert isinstance(loss, InBatchContrastLoss) and loss.tau == 0.2
