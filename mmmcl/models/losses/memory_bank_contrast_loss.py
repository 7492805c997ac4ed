import math
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_gather, get_world_size
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mmmcl.registry import MODELS
from ..utils import cohort_blocks, group_offsets

_VCL_BANKS = ('own', 'anchor')


@MODELS.register_module()
class MemoryBankContrastLoss(nn.Module):
    r"""The four contrastive terms of (L-)MCL against memory banks.

    One bank :math:`V_m` (``num_samples`` x ``feat_dim``) per net, rows
    initialised uniformly in :math:`[-1/\sqrt{d/3}, 1/\sqrt{d/3}]`. Each
    sample r brings ``idx[r] = [self, positive, K negatives]``; with
    :math:`R_m = V_m[idx]` (B, K+2, d), a (net, stage) embedding
    :math:`e_g` and the logits :math:`Z_{m,g} = R_m e_g / \tau`, a block
    (g = (i, k), h = (j, z)) with per-anchor weights :math:`w` adds

    - ICL: :math:`l_2(Z_{i,h}) + l_2(Z_{j,g})`, where :math:`l_2` is the
      mean of :math:`-\log p` over the two positive columns (self, positive)
      of the softmax over all K+2 columns;
    - VCL: :math:`l_1(Z_{i,g}) + l_1(Z_{j,h})` over the K+1 columns
      [positive, negatives], :math:`l_1 = -\log p` of the positive;
    - SoftICL: symmetric KL at temperature T between :math:`Z_{i,h}` and
      :math:`Z_{j,g}` (all columns); SoftVCL: the same between
      :math:`Z_{i,g}` and :math:`Z_{j,h}` (K+1 columns); peer detached,
      scaled by :math:`T^2/B`;

    each row weighted by :math:`w_r` and averaged over the batch. Banks get
    no gradient.

    The bank rows are gathered once per net and chunk of samples, never
    per block, and every block's term is a weighted sum over the M x G
    logit matrices :math:`Z_{m,g}` (linear in the weights). With gradients
    on, each chunk runs under activation checkpointing, so the memory held
    for backward is the inputs only: peak memory is bounded by one chunk's
    rows (``chunk_bytes``), whatever the number of blocks and samples.
    Second-order gradients (the meta step) flow through it. Call
    :meth:`update_banks` after the backward.

    Args:
        num_samples (int): Rows of each bank: the training set's length.
        feat_dim (int): Embedding width d.
        num_members (int): Nets M, one bank each.
        tau (float): Contrast temperature :math:`\tau`. Defaults to 0.07.
        kd_temperature (float): KL temperature T. Defaults to 3.0.
        momentum (float): Bank update momentum. Defaults to 0.5.
        vcl_bank (str): ``'own'``: the VCL of ``h`` reads net j's bank
            (the paper). ``'anchor'``: it reads net i's bank as well, as the
            reference L-MCL ImageNet code does. Defaults to ``'own'``.
        chunk_bytes (int): Bytes of one net's gathered bank rows processed
            at once. Defaults to 16 MiB.
    """

    #: The targets are bank rows, :meth:`update_banks` follows the backward
    #: (:class:`~mmmcl.models.distillers.ContrastLoss`).
    uses_banks = True

    def __init__(self,
                 num_samples: int,
                 feat_dim: int,
                 num_members: int,
                 tau: float = 0.07,
                 kd_temperature: float = 3.0,
                 momentum: float = 0.5,
                 vcl_bank: str = 'own',
                 chunk_bytes: int = 16 * 2**20) -> None:
        super().__init__()
        for name, value in (('num_samples', num_samples),
                            ('feat_dim', feat_dim),
                            ('num_members', num_members)):
            if not isinstance(value, int) or value < (2 if name ==
                                                      'num_members' else 1):
                raise ValueError(f'MemoryBankContrastLoss got {name}='
                                 f'{value!r}; it must be an int >= '
                                 f'{2 if name == "num_members" else 1}.')
        if tau <= 0 or kd_temperature <= 0:
            raise ValueError('MemoryBankContrastLoss: `tau` and '
                             '`kd_temperature` must be positive, got '
                             f'{tau}, {kd_temperature}.')
        if not 0 <= momentum < 1:
            raise ValueError('MemoryBankContrastLoss: `momentum` must be in '
                             f'[0, 1), got {momentum}.')
        if vcl_bank not in _VCL_BANKS:
            raise ValueError(f'MemoryBankContrastLoss got vcl_bank='
                             f'{vcl_bank!r}; valid values are {_VCL_BANKS}.')
        self.num_samples = num_samples
        self.feat_dim = feat_dim
        self.num_members = num_members
        self.tau = tau
        self.kd_temperature = kd_temperature
        self.momentum = momentum
        self.vcl_bank = vcl_bank
        self.chunk_bytes = chunk_bytes
        bound = 1. / math.sqrt(feat_dim / 3)
        for m in range(num_members):
            bank = torch.rand(num_samples, feat_dim) * (2 * bound) - bound
            self.register_buffer(f'bank{m}', bank)

    @property
    def banks(self) -> List[Tensor]:
        """The M banks, each (num_samples, feat_dim)."""
        return [getattr(self, f'bank{m}') for m in range(self.num_members)]

    def forward(self,
                embeddings: Sequence[Sequence[Tensor]],
                idx: Tensor,
                weights: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Sum of each term over all blocks (before alpha, beta, ...).

        Args:
            embeddings (Sequence[Sequence[Tensor]]): ``embeddings[m][s]``,
                the L2-normalised embedding of net m at stage s, (B, d).
            idx (Tensor): Bank rows of each sample, (B, K + 2): self, one
                positive, K negatives.
            weights (Tensor, optional): Per-anchor block weights,
                (num_blocks, B), blocks ordered as
                :func:`mmmcl.models.utils.cohort_blocks`. Defaults to None
                (all ones).

        Returns:
            dict[str, Tensor]: Scalars ``vcl``, ``soft_vcl``, ``icl``,
            ``soft_icl``.
        """
        num_stages = [len(e) for e in embeddings]
        if len(num_stages) != self.num_members:
            raise ValueError(
                f'MemoryBankContrastLoss has num_members={self.num_members} '
                f'banks but got embeddings of {len(num_stages)} nets.')
        emb = torch.stack([e for net in embeddings for e in net])
        batch_size = emb.shape[1]
        self._check_idx(idx, batch_size)
        pairs = _block_pairs(tuple(num_stages), self.vcl_bank, emb.device)
        if weights is None:
            weights = emb.new_ones(pairs.num_blocks, batch_size)
        elif weights.shape != (pairs.num_blocks, batch_size):
            raise ValueError(
                'MemoryBankContrastLoss: `weights` must have shape '
                f'(num_blocks={pairs.num_blocks}, B={batch_size}), got '
                f'{tuple(weights.shape)}.')

        with torch.autocast(emb.device.type, enabled=False):
            emb = emb.float() if emb.dtype in (torch.float16,
                                               torch.bfloat16) else emb
            weights = weights.to(emb.dtype)
            row_bytes = idx.shape[1] * self.feat_dim * emb.element_size()
            step = max(1, self.chunk_bytes // row_bytes)
            # Recompute chunks in backward only when the rows of the whole
            # batch would not fit in one chunk.
            recompute = torch.is_grad_enabled() and step < batch_size and (
                emb.requires_grad or weights.requires_grad)
            versions = [bank._version for bank in self.banks]
            totals = None
            for start in range(0, batch_size, step):
                rows = slice(start, start + step)
                args = (emb[:, rows], idx[rows], weights[:, rows], pairs,
                        versions)
                terms = checkpoint(
                    self._chunk_terms, *args, use_reentrant=False) \
                    if recompute else self._chunk_terms(*args)
                totals = terms if totals is None else [
                    a + b for a, b in zip(totals, terms)
                ]
        return dict(
            zip(('vcl', 'soft_vcl', 'icl', 'soft_icl'),
                (t / batch_size for t in totals)))

    def _check_idx(self, idx: Tensor, batch_size: int) -> None:
        if idx.dim() != 2 or idx.shape[0] != batch_size or idx.shape[1] < 3:
            raise ValueError(
                'MemoryBankContrastLoss: `idx` must be (B, K + 2) = [self, '
                'positive, K >= 1 negatives] per sample with B='
                f'{batch_size}, got {tuple(idx.shape)}.')
        if idx.min() < 0 or idx.max() >= self.num_samples:
            raise ValueError(
                f'MemoryBankContrastLoss: `idx` holds row {idx.max().item()}'
                f' (or {idx.min().item()}) but the banks have num_samples='
                f'{self.num_samples} rows: set `num_samples` to the '
                'training set\'s length.')

    def _chunk_terms(self, emb: Tensor, idx: Tensor, weights: Tensor,
                     pairs: '_BlockPairs',
                     versions: List[int]) -> Tuple[Tensor, ...]:
        """Unnormalised sums over the rows of one chunk of samples.

        Args:
            emb (Tensor): (G, b, d).
            idx (Tensor): (b, K + 2).
            weights (Tensor): (num_blocks, b).
            versions (list[int]): The banks' versions at the forward: a
                recomputation in backward must read the same rows.
        """
        if [bank._version for bank in self.banks] != versions:
            raise RuntimeError(
                'MemoryBankContrastLoss: the banks changed between the '
                'forward and the backward. Call update_banks() after '
                'backward(): the backward re-reads the bank rows.')
        # logits[m * G + g] = Z_{m,g} = R_m e_g / tau, (M * G, b, K + 2);
        # the rows R_m = V_m[idx], (b, K + 2, d), one net at a time.
        queries = emb.permute(1, 2, 0)  # (b, d, G)
        logits = torch.cat([
            torch.bmm(bank[idx].to(emb.dtype), queries).permute(2, 0, 1)
            for bank in self.banks
        ]) / self.tau
        log_p = logits.log_softmax(-1)
        icl = -(pairs.icl_weights(weights) * log_p[..., :2].mean(-1)).sum()
        # VCL over [positive, negatives]
        log_p_vcl = logits[..., 1:].log_softmax(-1)
        vcl = -(pairs.vcl_weights(weights) * log_p_vcl[..., 0]).sum()
        t = self.kd_temperature
        soft_icl = _mutual_kl(logits / t, pairs.soft_icl_weights(weights))
        soft_vcl = _mutual_kl(logits[..., 1:] / t,
                              pairs.soft_vcl_weights(weights))
        return vcl, soft_vcl * t**2, icl, soft_icl * t**2

    @torch.no_grad()
    def update_banks(self, final_embeddings: Sequence[Tensor],
                     sample_idx: Tensor) -> None:
        """Momentum update of the rows of the batch, after the backward.

        :math:`v \\leftarrow \\mathrm{normalize}(\\mu v + (1 - \\mu) e)` with
        the final-stage embedding e of each net; embeddings and indices of
        all ranks are gathered first, so every rank's banks stay equal.

        Args:
            final_embeddings (Sequence[Tensor]): Net m's last-stage
                embeddings, each (B, d).
            sample_idx (Tensor): Dataset index of each sample, (B, ).
        """
        sample_idx, rows = self.updated_rows(final_embeddings, sample_idx,
                                             self.banks)
        for bank, new_rows in zip(self.banks, rows):
            bank.index_copy_(0, sample_idx, new_rows)

    @torch.no_grad()
    def updated_rows(self, final_embeddings: Sequence[Tensor],
                     sample_idx: Tensor, banks: Sequence[Tensor]
                     ) -> Tuple[Tensor, List[Tensor]]:
        """What :meth:`update_banks` writes into ``banks`` (the M banks,
        each (num_samples, d)), which stay untouched: the rows' indices
        (B', ), gathered over the ranks, and each bank's new rows (B', d).
        """
        if len(final_embeddings) != self.num_members:
            raise ValueError(
                f'update_banks got {len(final_embeddings)} embeddings for '
                f'{self.num_members} banks.')
        if get_world_size() > 1:
            sample_idx = torch.cat(all_gather(sample_idx.contiguous()))
            final_embeddings = [
                torch.cat(all_gather(e.detach().contiguous()))
                for e in final_embeddings
            ]
        rows = [
            F.normalize(
                bank[sample_idx] * self.momentum +
                emb.detach().to(bank.dtype) * (1 - self.momentum),
                dim=1) for bank, emb in zip(banks, final_embeddings)
        ]
        return sample_idx, rows


def _mutual_kl(logits: Tensor, pair_weights: Tensor) -> Tensor:
    """:math:`\\sum_{s,t,r} W_{s,t,r} KL(sg\\,q_t \\| p_s)` over row r.

    Args:
        logits (Tensor): Temperature-scaled logits of N matrices, (N, b, C).
        pair_weights (Tensor): Weight of (student s, teacher t) per row,
            (N, N, b).
    """
    log_p = logits.log_softmax(-1)
    log_q = log_p.detach()
    q = log_q.exp()
    neg_entropy = (q * log_q).sum(-1)  # (N, b)
    cross = torch.einsum('tbc,sbc->stb', q, log_p)
    return (pair_weights * (neg_entropy.unsqueeze(0) - cross)).sum()


@lru_cache(maxsize=8)
def _block_pairs(num_stages: Tuple[int, ...], vcl_bank: str,
                 device: torch.device) -> '_BlockPairs':
    """The (read-only) block layout of a cohort, built once per shape."""
    return _BlockPairs(num_stages, vcl_bank, device)


class _BlockPairs:
    """Where each block's terms fall among the M x G logit matrices.

    Matrix ``m * G + g`` is :math:`Z_{m,g}` (bank of net m, embeddings of
    group g). For block b = (g, h) with g in net i and h in net j: ICL reads
    ``(i, h)`` and ``(j, g)``; VCL ``(i, g)`` and ``(j, h)`` (``'own'``) or
    ``(i, h)`` (``'anchor'``); the soft terms pair the same two matrices.
    """

    def __init__(self, num_stages: Sequence[int], vcl_bank: str,
                 device: torch.device) -> None:
        offsets = group_offsets(num_stages)
        num_groups = sum(num_stages)
        icl_a, icl_b, vcl_a, vcl_b = [], [], [], []
        for i, k, j, z in cohort_blocks(num_stages):
            g, h = offsets[i] + k, offsets[j] + z
            icl_a.append(i * num_groups + h)
            icl_b.append(j * num_groups + g)
            vcl_a.append(i * num_groups + g)
            vcl_b.append((j if vcl_bank == 'own' else i) * num_groups + h)
        self.num_blocks = len(icl_a)
        self.num_matrices = len(num_stages) * num_groups
        as_tensor = lambda x: torch.tensor(x, dtype=torch.long, device=device)
        self.icl = as_tensor(icl_a), as_tensor(icl_b)
        self.vcl = as_tensor(vcl_a), as_tensor(vcl_b)

    def _row_weights(self, sides: Tuple[Tensor, Tensor],
                     weights: Tensor) -> Tensor:
        """Weight of each matrix's rows, summed over blocks, (N, b)."""
        out = weights.new_zeros(self.num_matrices, weights.shape[1])
        return out.index_add(0, sides[0], weights).index_add(
            0, sides[1], weights)

    def _pair_weights(self, sides: Tuple[Tensor, Tensor],
                      weights: Tensor) -> Tensor:
        """Weight of each (student, teacher) matrix pair, (N, N, b)."""
        n = self.num_matrices
        out = weights.new_zeros(n * n, weights.shape[1])
        a, b = sides
        return out.index_add(0, a * n + b, weights).index_add(
            0, b * n + a, weights).view(n, n, -1)

    def icl_weights(self, weights: Tensor) -> Tensor:
        return self._row_weights(self.icl, weights)

    def vcl_weights(self, weights: Tensor) -> Tensor:
        return self._row_weights(self.vcl, weights)

    def soft_icl_weights(self, weights: Tensor) -> Tensor:
        return self._pair_weights(self.icl, weights)

    def soft_vcl_weights(self, weights: Tensor) -> Tensor:
        return self._pair_weights(self.vcl, weights)
