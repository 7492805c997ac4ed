"""A literal transcription of the authors' L-MCL ImageNet step (memory banks).

Written from winycg/L-MCL (commit 2c0901e): ``main_layer_mcl_imagenet_meta.py``
(``train``: one batch, its normal update and meta-optimisation;
``inner_objective``, ``outer_objective``; the optimizers) and
``losses/imagenet_sup_layer_mcl_meta_loss.py`` (``ContrastMemory.forward``,
``ContrastMemory.update_memory``, ``Sup_MCL_Loss_Meta.forward``), in one
process (``concat_all_gather`` is the identity, ``net.module`` is ``net``)
and device-agnostic; ``MetaSGD`` is the CIFAR transcription's (one file in
the reference). The networks, embedding heads, aggregators and meta-network
are a built :class:`CohortDistiller`'s modules; the banks are its
``MemoryBankContrastLoss`` buffers, updated in place. As in the reference,
every call of the contrastive loss writes the banks, the virtual steps' and
the replay's included, and ``MetaSGD``'s snapshots hold the banks.
Training never uses this module.
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from .lmcl_reference import (KLDiv, ReferenceNet, build_optimizers,
                             meta_optimisation, normal_update,
                             outer_objective, sum_over_blocks)


def contrast_memory(memory: Sequence[Tensor], embeddings_a: Tensor,
                    embeddings_b: Tensor, a: int, b: int, pos_idx: Tensor,
                    neg_idx: Tensor, weight: Tensor, pos_k: int, neg_k: int,
                    tau: float, kl: KLDiv):
    """``ContrastMemory.forward``: the four terms of block (a, b)."""
    batch_size, feat_dim = embeddings_a.shape
    idx = torch.cat([pos_idx, neg_idx], dim=1)

    def read(bank: int, embeddings: Tensor, columns: Tensor) -> Tensor:
        # index_select of the bank rows, bmm with the anchors, / tau
        neg_rep = torch.index_select(memory[bank], 0,
                                     columns.reshape(-1)).detach()
        neg_rep = neg_rep.view(batch_size, columns.shape[1], feat_dim)
        return torch.div(
            torch.bmm(neg_rep, embeddings.view(batch_size, feat_dim,
                                               1)).squeeze(-1), tau)

    cos_simi_ij = read(a, embeddings_b, idx)
    cos_simi_ji = read(b, embeddings_a, idx)
    inter_logits = [cos_simi_ij, cos_simi_ji]
    soft_icl_loss = 0.
    soft_icl_loss += kl(cos_simi_ij, cos_simi_ji.detach(), weight)
    soft_icl_loss += kl(cos_simi_ji, cos_simi_ij.detach(), weight)

    def supcon(logits: List[Tensor], num_pos: int):
        # the loops over `inter_logits` (ICL) and `intra_logits` (VCL)
        mask = torch.zeros_like(logits[0])
        mask[:, :num_pos] = 1.
        loss = 0.
        for logit in logits:
            log_prob = logit - torch.log(
                torch.exp(logit).sum(1, keepdim=True))
            mean_log_prob_pos = (mask * log_prob * weight).sum(1) / mask.sum(1)
            loss += -mean_log_prob_pos.mean()
        return loss

    icl_loss = supcon(inter_logits, pos_k + 1)

    idx = idx[:, 1:].contiguous()
    # the reference reads net a's bank for both (`'memory_' + str(a)`)
    intra_logits = [read(a, embeddings_a, idx), read(a, embeddings_b, idx)]
    soft_vcl_loss = 0.
    soft_vcl_loss += kl(intra_logits[0], intra_logits[1].detach(), weight)
    soft_vcl_loss += kl(intra_logits[1], intra_logits[0].detach(), weight)
    vcl_loss = supcon(intra_logits, pos_k)
    return vcl_loss, soft_vcl_loss, icl_loss, soft_icl_loss


@torch.no_grad()
def update_memory(memory: Sequence[Tensor], embeddings: Sequence[Tensor],
                  pos_idx: Tensor, momentum: float) -> None:
    """``ContrastMemory.update_memory`` (one process)."""
    pos_idx = pos_idx[:, 0].contiguous()
    for i in range(len(embeddings)):
        pos = torch.index_select(memory[i], 0, pos_idx.view(-1))
        pos.mul_(momentum)
        pos.add_(torch.mul(embeddings[i], 1 - momentum))
        l_norm = pos.pow(2).sum(1, keepdim=True).pow(0.5)
        updated_v = pos.div(l_norm)
        memory[i].index_copy_(0, pos_idx, updated_v)


class ReferenceBankMCLLoss(nn.Module):
    """``Sup_MCL_Loss_Meta`` (ImageNet) over a cohort's embedding heads and
    the banks of its ``MemoryBankContrastLoss`` (``self.contrast``, whose
    state dict holds them, as ``ContrastMemory``'s holds ``memory_i``)."""

    def __init__(self, cohort: nn.Module, tau: float, kd_T: float,
                 nce_m: float, pos_k: int, neg_k: int) -> None:
        super().__init__()
        self.embed_list = cohort.terms.contrast.embed_heads
        self.contrast = cohort.terms.contrast.contrast_loss
        self.tau, self.nce_m = tau, nce_m
        self.pos_k, self.neg_k = pos_k, neg_k
        self.kl = KLDiv(kd_T)

    def forward(self, embeddings, pos_idx: Tensor, neg_idx: Tensor,
                weights: Sequence[Tensor]):
        """The four terms, then the bank update (every call)."""
        memory = self.contrast.banks
        for i in range(len(embeddings)):
            for j in range(len(embeddings[i])):
                embeddings[i][j] = self.embed_list[i][j](embeddings[i][j])
        last_embeddings = [embeddings[i][-1] for i in range(len(embeddings))]
        terms = sum_over_blocks(
            embeddings, weights,
            lambda i, j, a, b, weight: contrast_memory(
                memory, a, b, i, j, pos_idx, neg_idx, weight, self.pos_k,
                self.neg_k, self.tau, self.kl))
        update_memory(memory, [e.detach() for e in last_embeddings], pos_idx,
                      self.nce_m)
        return terms


class ReferenceLMCLBank:
    """The objects of ``main_layer_mcl_imagenet_meta.py`` (395-424) around
    a cohort with ``MemoryBankContrastLoss``: the three optimizers, and
    ``MetaSGD`` snapshotting ``[net, criterion_mcl]``, the banks included.

    Args:
        cohort (CohortDistiller): Its modules and banks are used and
            updated in place.
        lr (float): The current lr. weight_decay (float): 1e-4 there.
        alpha, gamma, beta, lam (float): The loss weights (0.01, 1, 0.01,
            1). tau (float): 0.07. kd_T (float): 3. nce_m (float): 0.5.
        pos_k (int): 1. neg_k (int): 8192 there. times (int): 2.
    """

    def __init__(self, cohort: nn.Module, lr: float, weight_decay: float,
                 neg_k: int, alpha: float = 0.01, gamma: float = 1.,
                 beta: float = 0.01, lam: float = 1., tau: float = 0.07,
                 kd_T: float = 3., nce_m: float = 0.5, pos_k: int = 1,
                 times: int = 2) -> None:
        self.net = ReferenceNet(cohort)
        self.criterion_mcl = ReferenceBankMCLLoss(cohort, tau, kd_T, nce_m,
                                                  pos_k, neg_k)
        self.aggregator = cohort.teachers.aggregator.aggregators
        self.loss_weight_network = cohort.meta_net
        self.weights = (alpha, gamma, beta, lam)
        self.kd_T = kd_T
        self.times = times
        build_optimizers(self, lr, weight_decay)

    def inner_objective(self, data) -> Tensor:
        """``inner_objective`` (71-82): the weighted contrastive loss, which
        writes the banks."""
        inputs, targets, pos_idx, neg_idx = data
        embeddings, logits = self.net(inputs)
        weights = list(self.loss_weight_network(embeddings))
        alpha, gamma, beta, lam = self.weights
        loss_vcl, loss_soft_vcl, loss_icl, loss_soft_icl = \
            self.criterion_mcl(embeddings, pos_idx, neg_idx, weights)
        return alpha * loss_vcl + gamma * loss_soft_vcl \
            + beta * loss_icl + lam * loss_soft_icl

    def outer_objective(self, data) -> Tensor:
        return outer_objective(self.net, data[0], data[1])

    def train_batch(self, inputs: Tensor, targets: Tensor, pos_idx: Tensor,
                    neg_idx: Tensor, meta: bool = False) -> None:
        """One iteration of ``train()`` (123-201): the normal update, then
        the meta-optimisation if ``meta`` (``batch_idx % meta_freq == 0``).
        """
        normal_update(
            self, inputs, targets,
            lambda e, w: self.criterion_mcl(e, pos_idx, neg_idx, w))
        if meta:
            meta_optimisation(self, (inputs, targets, pos_idx, neg_idx))
