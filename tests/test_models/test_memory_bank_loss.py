import math

import pytest
import torch
import torch.nn.functional as F

from mmmcl.models.losses import MemoryBankContrastLoss
from mmmcl.models.utils import cohort_blocks
from mmmcl.testing import naive_memory_bank_contrast

TERMS = ('vcl', 'soft_vcl', 'icl', 'soft_icl')


def unit(angle):
    return [math.cos(angle), math.sin(angle)]


def log_softmax(xs):
    top = max(xs)
    lse = top + math.log(sum(math.exp(x - top) for x in xs))
    return [x - lse for x in xs]


def kl(teacher, student, t):
    """KL(softmax(teacher / t) || softmax(student / t))."""
    lq = log_softmax([x / t for x in teacher])
    lp = log_softmax([x / t for x in student])
    return sum(math.exp(a) * (a - b) for a, b in zip(lq, lp))


@pytest.mark.parametrize('vcl_bank', ['own', 'anchor'])
def test_terms_by_hand(vcl_bank):
    """Two nets of one stage, one sample, d = 2, idx = [self, pos, neg]."""
    tau, t, w = 0.5, 2.0, [0.3, 0.9]
    loss = MemoryBankContrastLoss(3,
                                  2,
                                  2,
                                  tau=tau,
                                  kd_temperature=t,
                                  vcl_bank=vcl_bank).double()
    bank_angles = [[0.1, 0.7, 2.5], [-0.4, 1.2, 3.0]]
    for bank, angles in zip(loss.banks, bank_angles):
        bank.copy_(torch.tensor([unit(a) for a in angles], dtype=torch.double))
    emb_angles = [0.3, 1.9]
    embeddings = [[torch.tensor([unit(a)], dtype=torch.double)]
                  for a in emb_angles]
    out = loss(embeddings, torch.tensor([[0, 1, 2]]),
               torch.tensor([[w[0]], [w[1]]], dtype=torch.double))

    def z(m, g):  # <bank_m[c], e_g> / tau for c = self, pos, neg
        return [math.cos(b - emb_angles[g]) / tau for b in bank_angles[m]]

    def l2(x):  # mean -log p of self and positive, all columns
        lp = log_softmax(x)
        return -(lp[0] + lp[1]) / 2

    def l1(x):  # -log p of the positive among [pos, neg]
        return -log_softmax(x[1:])[0]

    both = w[0] + w[1]
    icl = both * (l2(z(0, 1)) + l2(z(1, 0)))
    soft_icl = both * t**2 * (kl(z(1, 0), z(0, 1), t) +
                              kl(z(0, 1), z(1, 0), t))
    if vcl_bank == 'own':
        vcl = both * (l1(z(0, 0)) + l1(z(1, 1)))
        soft_vcl = both * t**2 * (kl(z(1, 1)[1:],
                                     z(0, 0)[1:], t) +
                                  kl(z(0, 0)[1:],
                                     z(1, 1)[1:], t))
    else:  # block (net 0 -> net 1) reads bank 0 twice, the other bank 1
        vcl = w[0] * (l1(z(0, 0)) + l1(z(0, 1))) + w[1] * (l1(z(1, 1)) +
                                                           l1(z(1, 0)))
        soft_vcl = t**2 * sum(
            wb * (kl(z(m, 1 - g)[1:],
                     z(m, g)[1:], t) + kl(z(m, g)[1:],
                                          z(m, 1 - g)[1:], t))
            for wb, (m, g) in zip(w, [(0, 0), (1, 1)]))
    expected = dict(vcl=vcl, soft_vcl=soft_vcl, icl=icl, soft_icl=soft_icl)
    for key in TERMS:
        assert out[key].item() == pytest.approx(expected[key], rel=1e-12), key


def random_inputs(stages, batch_size=6, dim=8, num_samples=40, k=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    embeddings = [[
        F.normalize(torch.randn(batch_size,
                                dim,
                                generator=gen,
                                dtype=torch.double),
                    dim=1).requires_grad_() for _ in range(s)
    ] for s in stages]
    idx = torch.randint(0, num_samples, (batch_size, k + 2), generator=gen)
    weights = torch.rand(len(cohort_blocks(stages)),
                         batch_size,
                         generator=gen,
                         dtype=torch.double).requires_grad_()
    return embeddings, idx, weights


@pytest.mark.parametrize('stages', [[2, 2], [1, 3, 2]], ids=['M2', 'M3'])
@pytest.mark.parametrize('vcl_bank', ['own', 'anchor'])
@pytest.mark.parametrize('chunk_bytes', [2**30, 1], ids=['whole', 'chunked'])
def test_equals_per_block_loop(stages, vcl_bank, chunk_bytes):
    """Values, gradients and second-order gradients (the meta step's)."""
    torch.manual_seed(0)
    loss = MemoryBankContrastLoss(40,
                                  8,
                                  len(stages),
                                  vcl_bank=vcl_bank,
                                  chunk_bytes=chunk_bytes).double()
    embeddings, idx, weights = random_inputs(stages)
    inputs = [e for net in embeddings for e in net]
    out = loss(embeddings, idx, weights)
    ref = naive_memory_bank_contrast(embeddings,
                                     idx,
                                     loss.banks,
                                     weights,
                                     vcl_bank=vcl_bank)
    for key in TERMS:
        torch.testing.assert_close(out[key], ref[key], rtol=1e-12, atol=0)
    mixed = [0.1, 1.0, 0.1, 1.0]
    grads = torch.autograd.grad(sum(c * out[k] for c, k in zip(mixed, TERMS)),
                                inputs,
                                create_graph=True)
    ref_grads = torch.autograd.grad(sum(c * ref[k]
                                        for c, k in zip(mixed, TERMS)),
                                    inputs,
                                    create_graph=True)
    probe = [torch.randn_like(g) for g in grads]
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    # d/dw <dL/de, v>: the hypergradient's path through the weights
    hyper = torch.autograd.grad(
        sum((g * v).sum() for g, v in zip(grads, probe)), weights)[0]
    ref_hyper = torch.autograd.grad(
        sum((g * v).sum() for g, v in zip(ref_grads, probe)), weights)[0]
    torch.testing.assert_close(hyper, ref_hyper, rtol=1e-10, atol=1e-12)


def test_banks_initialisation_and_state_dict():
    torch.manual_seed(0)
    loss = MemoryBankContrastLoss(1000, 12, 3)
    bound = 1 / math.sqrt(12 / 3)
    assert len(loss.banks) == 3
    for m, bank in enumerate(loss.banks):
        assert bank.shape == (1000, 12)
        assert bank.abs().max() <= bound
        assert bank.max() > 0.95 * bound and bank.min() < -0.95 * bound
        assert torch.equal(loss.state_dict()[f'bank{m}'], bank)
    assert not torch.equal(loss.banks[0], loss.banks[1])


def test_update_banks_formula():
    torch.manual_seed(0)
    loss = MemoryBankContrastLoss(10, 4, 2, momentum=0.25)
    before = [b.clone() for b in loss.banks]
    emb = [F.normalize(torch.randn(3, 4), dim=1) for _ in range(2)]
    sample_idx = torch.tensor([7, 2, 5])
    loss.update_banks(emb, sample_idx)
    for m in range(2):
        for row, i in enumerate(sample_idx.tolist()):
            v = 0.25 * before[m][i] + 0.75 * emb[m][row]
            torch.testing.assert_close(loss.banks[m][i], v / v.norm())
        untouched = [i for i in range(10) if i not in (7, 2, 5)]
        assert torch.equal(loss.banks[m][untouched], before[m][untouched])


def test_bad_input():
    loss = MemoryBankContrastLoss(40, 8, 2, chunk_bytes=1)
    embeddings, idx, weights = random_inputs([2, 2])
    embeddings = [[e.float() for e in net] for net in embeddings]
    weights = weights.float()
    with pytest.raises(ValueError, match='num_samples=40'):
        loss(embeddings, idx + 40, weights)
    with pytest.raises(ValueError, match='weights'):
        loss(embeddings, idx, weights[:3])
    with pytest.raises(ValueError, match='num_members=2'):
        loss(embeddings + embeddings[:1], idx, weights)
    with pytest.raises(ValueError, match='K \\+ 2'):
        loss(embeddings, idx[:, :2], weights)
    with pytest.raises(ValueError, match='vcl_bank'):
        MemoryBankContrastLoss(40, 8, 2, vcl_bank='mine')
    with pytest.raises(ValueError, match='num_members'):
        MemoryBankContrastLoss(40, 8, 1)
    # the chunked backward re-reads the banks: updating first is refused
    out = loss(embeddings, idx, weights)
    loss.update_banks([net[-1].detach() for net in embeddings], idx[:, 0])
    with pytest.raises(RuntimeError, match='after backward'):
        sum(out.values()).backward()
