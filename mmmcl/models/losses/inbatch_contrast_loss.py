from itertools import combinations, permutations
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import block_group_index


@MODELS.register_module()
class InBatchContrastLoss(nn.Module):
    r"""The four contrastive terms of (L-)MCL with in-batch negatives.

    For a logit matrix :math:`L` (B x B) and per-anchor weights :math:`w`:

    .. math::
        l(L, w) = -\frac{1}{B}\sum_r w_r
            \frac{\sum_c P_{rc} \log p_{rc}}{\sum_c P_{rc}},\quad
        \log p_{rc} = L_{rc} - \log\sum_{c'} D_{rc'} e^{L_{rc'}}

    with positives :math:`P_{rc} = [y_r = y_c, r \ne c]` and denominator
    mask :math:`D_{rc} = [r \ne c]`. A block (a, k, b, z) pairs stage k of
    net a (embeddings A) with stage z of net b (embeddings :math:`B_m`):

    - VCL: :math:`l(AA^T/\tau, w) + l(B_mB_m^T/\tau, w)`
    - ICL: :math:`l(AB_m^T/\tau, w) + l(B_mA^T/\tau, w)`
    - SoftVCL / SoftICL: symmetric KL at temperature T between the rows of
      :math:`AA^T/\tau` and :math:`B_mB_m^T/\tau` (resp. :math:`AB_m^T/\tau`
      and :math:`B_mA^T/\tau`), full rows, peer detached, scaled by
      :math:`T^2/B` and weighted per anchor.

    Every term is linear in the weights, so each distinct matrix is built
    once from one Gram matrix of all embeddings and weighted by the sum of
    the weights of the blocks it occurs in (same value as the per-block
    loop of the reference code, a fraction of its cost).

    An anchor without any positive in the batch contributes zero (the
    reference code divides 0 by 0); the class-balanced batch sampler
    guarantees one.

    Args:
        tau (float): Contrast temperature :math:`\tau`. Defaults to 0.1.
        kd_temperature (float): KL temperature T of the soft terms.
            Defaults to 3.0.
        mask_cross_view_self (bool): The reference code's ICL quirk: in the
            cross-network terms also mask column r of anchor r (the same
            image seen by the other network), so the only cross-network
            positive is the other same-class image. If False, ICL counts
            that image as a positive and keeps it in the denominator.
            Defaults to True.
    """

    #: The targets are the labels
    #: (:class:`~mmmcl.models.distillers.ContrastLoss`).
    uses_banks = False

    def __init__(self,
                 tau: float = 0.1,
                 kd_temperature: float = 3.0,
                 mask_cross_view_self: bool = True) -> None:
        super().__init__()
        if tau <= 0 or kd_temperature <= 0:
            raise ValueError('InBatchContrastLoss: `tau` and `kd_temperature`'
                             f' must be positive, got {tau}, '
                             f'{kd_temperature}.')
        self.tau = tau
        self.kd_temperature = kd_temperature
        self.mask_cross_view_self = mask_cross_view_self

    def forward(self,
                embeddings: Sequence[Sequence[Tensor]],
                labels: Tensor,
                weights: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Sum of each term over all blocks (before alpha, beta, ...).

        Args:
            embeddings (Sequence[Sequence[Tensor]]): ``embeddings[m][s]`` is
                the L2-normalised embedding of net m at stage s, (B, D).
            labels (Tensor): Class labels y, (B, ).
            weights (Tensor, optional): Per-anchor block weights w,
                (num_blocks, B), blocks ordered as
                :func:`mmmcl.models.utils.cohort_blocks`. Defaults to None
                (all ones).

        Returns:
            dict[str, Tensor]: Scalars ``vcl``, ``soft_vcl``, ``icl``,
            ``soft_icl``.
        """
        num_stages = [len(e) for e in embeddings]
        if len(num_stages) < 2:
            raise ValueError('InBatchContrastLoss needs embeddings of at '
                             f'least 2 nets, got {len(num_stages)}.')
        emb = torch.stack([e for net in embeddings for e in net])
        batch_size = labels.numel()
        g_idx, h_idx = block_group_index(num_stages, device=emb.device)
        if weights is None:
            weights = emb.new_ones(len(g_idx), batch_size)
        elif weights.shape != (len(g_idx), batch_size):
            raise ValueError(
                f'InBatchContrastLoss: `weights` must have shape '
                f'(num_blocks={len(g_idx)}, B={batch_size}), '
                f'got {tuple(weights.shape)}.')
        with torch.autocast(emb.device.type, enabled=False):
            return self._fused_terms(emb, num_stages, labels, weights, g_idx,
                                     h_idx)

    @staticmethod
    def _cross_net_grams(emb: Tensor, num_stages: Sequence[int]) -> Tensor:
        """E_g E_h^T of every block (g, h), in block order, (blocks, B, B).

        One matmul per unordered pair of nets; the blocks of the reverse
        order are transposes of the same matrices.
        """
        batch_size, dim = emb.shape[1:]
        nets = emb.split(list(num_stages))
        grams = {}
        for i, j in combinations(range(len(nets)), 2):
            gram = nets[i].reshape(-1, dim) @ nets[j].reshape(-1, dim).T
            grams[i, j] = gram.view(num_stages[i], batch_size, num_stages[j],
                                    batch_size).transpose(1, 2)
        blocks = []
        for i, j in permutations(range(len(nets)), 2):
            # (S_i, S_j, B, B): E_(i,k) E_(j,z)^T at [k, z]
            gram = grams[i, j] if i < j else grams[j, i].permute(1, 0, 3, 2)
            blocks.append(gram.reshape(-1, batch_size, batch_size))
        return torch.cat(blocks)

    def _fused_terms(self, emb: Tensor, num_stages: Sequence[int],
                     labels: Tensor, weights: Tensor, g_idx: Tensor,
                     h_idx: Tensor) -> Dict[str, Tensor]:
        """The four terms in fp32 (or fp64).

        Args:
            emb (Tensor): Stacked embeddings E of the G (net, stage) groups,
                (G, B, D).
            num_stages (Sequence[int]): Stages S_m of each net.
            labels (Tensor): (B, ).
            weights (Tensor): Block weights w, (num_blocks, B).
            g_idx, h_idx (Tensor): Groups of the two sides of every block,
                (num_blocks, ).
        """
        if emb.dtype in (torch.float16, torch.bfloat16):
            emb = emb.float()
        num_groups, batch_size = emb.shape[:2]
        weights = weights.to(emb.dtype)
        # Block (h, g) of block (g, h); both orders are always present.
        key = g_idx * num_groups + h_idx
        reverse = torch.empty_like(key)
        reverse[key.argsort()] = (h_idx * num_groups + g_idx).argsort()
        # pair_w[b]: weight of E_g E_h^T / tau as the cross-net matrix (ICL)
        # and of the pair (E_g E_g^T student, E_h E_h^T teacher) in SoftVCL.
        pair_w = weights + weights[reverse]
        # self_w[g]: weight of E_g E_g^T / tau in VCL.
        self_w = pair_w.new_zeros(num_groups, batch_size).index_add(
            0, g_idx, pair_w)

        logits = torch.cat([
            torch.bmm(emb, emb.transpose(1, 2)),
            self._cross_net_grams(emb, num_stages)
        ]) / self.tau
        row_loss = self._supcon_rows(logits, labels, num_groups)
        vcl = (self_w * row_loss[:num_groups]).sum() / batch_size
        icl = (pair_w * row_loss[num_groups:]).sum() / batch_size

        t = self.kd_temperature
        log_p = F.log_softmax(logits / t, dim=-1)
        log_q = log_p.detach()
        q = log_q.exp()
        neg_entropy = (q * log_q).sum(-1)  # (G + num_blocks, B)
        # SoftICL: row r of E_g E_h^T mimics row r of E_h E_g^T.
        teacher = num_groups + reverse
        cross = (q[teacher] * log_p[num_groups:]).sum(-1)
        soft_icl = (pair_w * (neg_entropy[teacher] - cross)).sum()
        # SoftVCL: row r of E_g E_g^T mimics row r of E_h E_h^T with weight
        # pair_w[g, h] (a dense (G, G, B) copy; zero within a net).
        dense_w = pair_w.new_zeros(num_groups, num_groups,
                                   batch_size).index_put((g_idx, h_idx),
                                                         pair_w)
        cross_vcl = torch.einsum('hrc,grc->ghr', q[:num_groups],
                                 log_p[:num_groups])
        soft_vcl = (dense_w *
                    (neg_entropy[:num_groups].unsqueeze(0) - cross_vcl)).sum()
        scale = t**2 / batch_size
        return dict(
            vcl=vcl,
            soft_vcl=soft_vcl * scale,
            icl=icl,
            soft_icl=soft_icl * scale)

    def _supcon_rows(self, logits: Tensor, labels: Tensor,
                     num_intra: int) -> Tensor:
        """Per-anchor supervised contrastive loss of every logit matrix.

        Args:
            logits (Tensor): N matrices, the first ``num_intra`` within a
                net, the others across nets, (N, B, B).
            labels (Tensor): (B, ).
            num_intra (int): Number of intra-net matrices.

        Returns:
            Tensor: ``-sum_c P log p / sum_c P`` per anchor, (N, B).
        """
        batch_size = logits.shape[-1]
        eye = torch.eye(batch_size, dtype=torch.bool, device=logits.device)
        same = labels.view(-1, 1) == labels.view(1, -1)
        if self.mask_cross_view_self:
            return self._masked_rows(logits, same, eye)
        # The own image is masked only within one net's view.
        no_mask = torch.zeros_like(eye)
        return torch.cat([
            self._masked_rows(logits[:num_intra], same, eye),
            self._masked_rows(logits[num_intra:], same, no_mask)
        ])

    @staticmethod
    def _masked_rows(logits: Tensor, same: Tensor, mask: Tensor) -> Tensor:
        """Rows of l(L) with columns ``mask`` (B, B) left out."""
        lse = logits.masked_fill(mask, float('-inf')).logsumexp(-1)
        positive = (same & ~mask).to(logits.dtype)
        num_pos = positive.sum(-1)
        pos_logit = torch.einsum('nrc,rc->nr', logits, positive)
        return (lse - pos_logit / num_pos.clamp(min=1)) * (num_pos > 0)
