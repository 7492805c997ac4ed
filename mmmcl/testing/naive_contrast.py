"""Literal per-block implementations of the contrastive terms.

They follow the method spec block by block, as the reference code does, and
serve as the ground truth of the tests and the baseline of
``tools/analysis_tools/benchmark_loss.py``. Training never uses them.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmmcl.models.utils import cohort_blocks


def _supcon(logits: Tensor, positive: Tensor, denominator: Tensor,
            weight: Tensor) -> Tensor:
    """l(L, w) of the spec for one (B, B) matrix."""
    log_prob = logits - torch.log((logits.exp() * denominator).sum(
        1, keepdim=True))
    mean_pos = (positive * log_prob).sum(1) / positive.sum(1)
    return -(weight * mean_pos).mean()


def _kl(student: Tensor, teacher: Tensor, weight: Tensor, t: float) -> Tensor:
    """T^2/B sum_r w_r KL(softmax(sg teacher_r/T) || softmax(student_r/T))."""
    log_p_s = F.log_softmax(student / t, dim=1)
    log_p_t = F.log_softmax(teacher.detach() / t, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1)
    return t**2 * (weight * kl).sum() / student.shape[0]


def naive_inbatch_contrast(embeddings: Sequence[Sequence[Tensor]],
                           labels: Tensor,
                           weights: Optional[Tensor] = None,
                           tau: float = 0.1,
                           kd_temperature: float = 3.0,
                           mask_cross_view_self: bool = True
                           ) -> Dict[str, Tensor]:
    """The four in-batch terms, one block at a time (see
    :class:`mmmcl.models.losses.InBatchContrastLoss` for the arguments)."""
    blocks = cohort_blocks([len(e) for e in embeddings])
    batch_size = labels.numel()
    if weights is None:
        weights = embeddings[0][0].new_ones(len(blocks), batch_size)
    eye = torch.eye(batch_size, dtype=embeddings[0][0].dtype,
                    device=labels.device)
    same = (labels.view(-1, 1) == labels.view(1, -1)).to(eye)
    intra_pos, intra_den = same - eye, 1 - eye
    if mask_cross_view_self:
        inter_pos, inter_den = intra_pos, intra_den
    else:
        inter_pos, inter_den = same, torch.ones_like(eye)
    total = dict(vcl=0., soft_vcl=0., icl=0., soft_icl=0.)
    t = kd_temperature
    for n, (i, k, j, z) in enumerate(blocks):
        a, b, w = embeddings[i][k], embeddings[j][z], weights[n]
        aa, bb = a @ a.T / tau, b @ b.T / tau
        ab, ba = a @ b.T / tau, b @ a.T / tau
        total['vcl'] = total['vcl'] + _supcon(aa, intra_pos, intra_den, w) \
            + _supcon(bb, intra_pos, intra_den, w)
        total['icl'] = total['icl'] + _supcon(ab, inter_pos, inter_den, w) \
            + _supcon(ba, inter_pos, inter_den, w)
        total['soft_vcl'] = total['soft_vcl'] + _kl(aa, bb, w, t) \
            + _kl(bb, aa, w, t)
        total['soft_icl'] = total['soft_icl'] + _kl(ab, ba, w, t) \
            + _kl(ba, ab, w, t)
    return total


def _positive_mean_log_prob(logits: Tensor, num_pos: int,
                            weight: Tensor) -> Tensor:
    """-(1/B) sum_r w_r mean of log p over the first ``num_pos`` columns."""
    log_prob = logits - torch.log(logits.exp().sum(1, keepdim=True))
    return -(weight * log_prob[:, :num_pos].mean(1)).mean()


def naive_bank_block(a: Tensor, b: Tensor, bank_i: Tensor, bank_j: Tensor,
                     idx: Tensor, weight: Tensor, tau: float = 0.07,
                     kd_temperature: float = 3.0,
                     vcl_bank: str = 'own') -> Dict[str, Tensor]:
    """The four bank terms of one block: ``a`` of net i, ``b`` of net j,
    gathering the rows of this block as the reference code does."""
    t = kd_temperature

    def logits(bank: Tensor, rows: Tensor, emb: Tensor) -> Tensor:
        gathered = bank[rows].detach()  # (B, columns, d)
        return torch.bmm(gathered, emb.unsqueeze(-1)).squeeze(-1) / tau

    z_ib, z_ja = logits(bank_i, idx, b), logits(bank_j, idx, a)
    y_a = logits(bank_i, idx[:, 1:], a)
    y_b = logits(bank_j if vcl_bank == 'own' else bank_i, idx[:, 1:], b)
    return dict(
        vcl=_positive_mean_log_prob(y_a, 1, weight) +
        _positive_mean_log_prob(y_b, 1, weight),
        soft_vcl=_kl(y_a, y_b, weight, t) + _kl(y_b, y_a, weight, t),
        icl=_positive_mean_log_prob(z_ib, 2, weight) +
        _positive_mean_log_prob(z_ja, 2, weight),
        soft_icl=_kl(z_ib, z_ja, weight, t) + _kl(z_ja, z_ib, weight, t))


def naive_memory_bank_contrast(embeddings: Sequence[Sequence[Tensor]],
                               idx: Tensor,
                               banks: Sequence[Tensor],
                               weights: Optional[Tensor] = None,
                               tau: float = 0.07,
                               kd_temperature: float = 3.0,
                               vcl_bank: str = 'own') -> Dict[str, Tensor]:
    """The four bank terms, one block at a time (see
    :class:`mmmcl.models.losses.MemoryBankContrastLoss` for the
    arguments)."""
    blocks = cohort_blocks([len(e) for e in embeddings])
    if weights is None:
        weights = embeddings[0][0].new_ones(len(blocks), idx.shape[0])
    total = dict(vcl=0., soft_vcl=0., icl=0., soft_icl=0.)
    for n, (i, k, j, z) in enumerate(blocks):
        terms = naive_bank_block(embeddings[i][k], embeddings[j][z], banks[i],
                                 banks[j], idx, weights[n], tau,
                                 kd_temperature, vcl_bank)
        for key in total:
            total[key] = total[key] + terms[key]
    return total
