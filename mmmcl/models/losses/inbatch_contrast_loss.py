from typing import Dict, List, Optional, Sequence

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
        flat: List[Tensor] = [e for net in embeddings for e in net]
        num_groups = len(flat)
        batch_size = labels.numel()
        device = flat[0].device
        g_idx, h_idx = block_group_index(num_stages, device=device)
        if weights is None:
            weights = flat[0].new_ones(len(g_idx), batch_size)
        elif weights.shape != (len(g_idx), batch_size):
            raise ValueError(
                f'InBatchContrastLoss: `weights` must have shape '
                f'(num_blocks={len(g_idx)}, B={batch_size}), '
                f'got {tuple(weights.shape)}.')

        # pair_w[g, h] = w(g, h) + w(h, g): the weight of the matrix
        # E_g E_h^T in the cross-net terms; zero for same-net pairs.
        block_w = weights.new_zeros(num_groups, num_groups, batch_size)
        block_w = block_w.index_put((g_idx, h_idx), weights)
        pair_w = block_w + block_w.transpose(0, 1)

        with torch.autocast(device.type, enabled=False):
            return self._fused_terms(
                torch.stack(flat), labels, pair_w, batch_size)

    def _fused_terms(self, emb: Tensor, labels: Tensor, pair_w: Tensor,
                     batch_size: int) -> Dict[str, Tensor]:
        """The four terms from stacked embeddings (G, B, D), in fp32+."""
        if emb.dtype in (torch.float16, torch.bfloat16):
            emb = emb.float()
        pair_w = pair_w.to(emb.dtype)
        self_w = pair_w.sum(1)  # (G, B): weight of E_g E_g^T in VCL
        # logits[g, h] = E_g E_h^T / tau, (G, G, B, B)
        logits = torch.einsum('grd,hcd->ghrc', emb, emb) / self.tau
        row_loss = self._supcon_rows(logits, labels)  # (G, G, B)
        diag = torch.arange(emb.shape[0], device=emb.device)
        vcl = (self_w * row_loss[diag, diag]).sum() / batch_size
        icl = (pair_w * row_loss).sum() / batch_size

        t = self.kd_temperature
        log_p = F.log_softmax(logits / t, dim=-1)
        # SoftICL: row r of E_g E_h^T mimics row r of E_h E_g^T.
        log_q = log_p.transpose(0, 1).detach()
        kl_icl = (log_q.exp() * (log_q - log_p)).sum(-1)
        soft_icl = (pair_w * kl_icl).sum() * t**2 / batch_size
        # SoftVCL: row r of E_g E_g^T mimics row r of E_h E_h^T.
        log_p_self = log_p[diag, diag]  # (G, B, B)
        q_self = log_p_self.detach().exp()
        neg_entropy = (q_self * log_p_self.detach()).sum(-1)  # (G, B)
        cross = torch.einsum('hrc,grc->ghr', q_self, log_p_self)
        kl_vcl = neg_entropy.unsqueeze(0) - cross
        soft_vcl = (pair_w * kl_vcl).sum() * t**2 / batch_size
        return dict(vcl=vcl, soft_vcl=soft_vcl, icl=icl, soft_icl=soft_icl)

    def _supcon_rows(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Per-anchor supervised contrastive loss of every logit matrix.

        Args:
            logits (Tensor): (G, G, B, B).
            labels (Tensor): (B, ).

        Returns:
            Tensor: ``-sum_c P log p / sum_c P`` per anchor, (G, G, B).
        """
        num_groups, batch_size = logits.shape[0], logits.shape[-1]
        eye = torch.eye(batch_size, dtype=torch.bool, device=logits.device)
        same = labels.view(-1, 1) == labels.view(1, -1)
        if self.mask_cross_view_self:
            self_mask = eye.expand(num_groups, num_groups, -1, -1)
        else:  # the own image is masked only within one view
            on_diag = torch.eye(
                num_groups, dtype=torch.bool, device=logits.device)
            self_mask = eye & on_diag[:, :, None, None]
        lse = logits.masked_fill(self_mask, float('-inf')).logsumexp(-1)
        positive = (same & ~self_mask).to(logits.dtype)
        num_pos = positive.sum(-1)
        pos_logit = (positive * logits).sum(-1) / num_pos.clamp(min=1)
        return (lse - pos_logit) * (num_pos > 0)
