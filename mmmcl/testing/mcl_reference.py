"""A literal transcription of the authors' MCL contrastive loss (CIFAR).

Written from winycg/MCL (commit 236da2f), ``losses/cifar_sup_mcl_loss.py``
(``SupMCL.forward`` and ``KLDiv``), device-agnostic. Unlike L-MCL's block
sum it counts each matrix once: VCL once per net, ICL, Soft ICL and Soft
VCL once per ordered pair of nets. Training never uses this module.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def kl_div(y_s: Tensor, y_t: Tensor, T: float) -> Tensor:
    """``KLDiv.forward``."""
    p_s = F.log_softmax(y_s / T, dim=1)
    p_t = F.softmax(y_t / T, dim=1)
    return F.kl_div(p_s, p_t, reduction='batchmean') * (T**2)


def sup_mcl(embeddings: Sequence[Tensor], labels: Tensor, tau: float,
            kd_T: float):
    """``SupMCL.forward``: (vcl, soft_vcl, icl, soft_icl) of the nets'
    L2-normalised embeddings, each (B, D)."""
    number_net = len(embeddings)
    labels = labels.unsqueeze(0)
    eye = torch.eye(labels.size(1), dtype=embeddings[0].dtype,
                    device=embeddings[0].device)
    intra_mask = torch.eq(labels, labels.T).to(eye) - eye
    diag_mask = 1. - eye

    inter_logits = []
    soft_icl_loss = 0.
    for i in range(number_net):
        for j in range(i + 1, number_net):
            cos_simi_ij = torch.div(torch.mm(embeddings[i], embeddings[j].T),
                                    tau)
            inter_logits.append(cos_simi_ij)
            cos_simi_ji = torch.div(torch.mm(embeddings[j], embeddings[i].T),
                                    tau)
            inter_logits.append(cos_simi_ji)
            soft_icl_loss += kl_div(cos_simi_ij, cos_simi_ji.detach(), kd_T)
            soft_icl_loss += kl_div(cos_simi_ji, cos_simi_ij.detach(), kd_T)

    def supcon(logits):
        # the loops over `inter_logits` (ICL) and `intra_logits` (VCL)
        loss = 0.
        for logit in logits:
            log_prob = logit - torch.log(
                (torch.exp(logit) * diag_mask).sum(1, keepdim=True))
            mean_log_prob_pos = (intra_mask * log_prob).sum(1) / \
                intra_mask.sum(1)
            loss += -mean_log_prob_pos.mean()
        return loss

    icl_loss = supcon(inter_logits)
    intra_logits = [
        torch.div(torch.mm(e, e.T), tau) for e in embeddings
    ]
    soft_vcl_loss = 0.
    for i in range(number_net):
        for j in range(number_net):
            if i != j:
                soft_vcl_loss += kl_div(intra_logits[i],
                                        intra_logits[j].detach(), kd_T)
    vcl_loss = supcon(intra_logits)
    return vcl_loss, soft_vcl_loss, icl_loss, soft_icl_loss
