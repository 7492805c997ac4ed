"""Transcriptions of the online-KD reference implementations' computations.

Each function follows its reference's order of operations (module calls,
pooling, softmax dims, the 1e-7 shift, reductions, which tensors are
detached), written from those repositories' code as of their last commits:

- ONE: github.com/Lan1991Xu/ONE_NeurIPS2018, ``loss/kl_loss.py``,
  ``models/cifar/resnet.py`` (``ONE_ResNet.forward``), ``cifar_one.py``
  (``train``) and ``utils/ramps.py``;
- OKDDip: github.com/DefangChen/OKDDip, ``utils.py`` (``KL_Loss``),
  ``models/model_cifar/resnet_GL.py`` (``ResNet.forward``, ``en=False``)
  and ``train_GL.py`` (``train``);
- FFL: github.com/Jangho-Kim/FFL-pytorch, ``our_network.py``
  (``Fusion_module.forward``), ``utils.py`` (``KLLoss``) and
  ``train_FFL.py`` (``train``);
- CL-ILR: github.com/winycg/MCL-OKD, ``main_cifar_cl_ilr.py``
  (``DistillKL``, the per-head targets and ``train``).

KDCL (Guo et al., CVPR 2020) publishes no code: its loss is written from
the paper's equations. PCL (Wu & Gong, AAAI 2021) publishes none either; its
loss follows the re-implementation github.com/shaoeric/Peer-Collaborative-
Learning-for-Online-Knowledge-Distillation, ``src/losses/kd_loss.py``
(``KDLoss``, ``PMLoss``) and ``src/losses/loss_wrapper.py``.

They take the parameters of mmmcl's modules as plain tensors, so a test can
compare the two on the same weights. Training never uses them.
"""
from typing import List

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def one_kl_loss(pred: Tensor, label: Tensor, T: float = 3.) -> Tensor:
    """ONE's ``KLLoss`` (FFL's ``KLLoss`` is the same code)."""
    predict = F.log_softmax(pred / T, dim=1)
    target_data = F.softmax(label / T, dim=1) + 10**(-7)
    target = target_data.detach()
    return T * T * ((target * (target.log() - predict)).sum(1).sum() /
                    target.size()[0])


def okddip_kl_loss(output_batch: Tensor, teacher_outputs: Tensor,
                   T: float = 3.) -> Tensor:
    """OKDDip's ``KL_Loss``: the target is not detached."""
    output_batch = F.log_softmax(output_batch / T, dim=1)
    teacher_outputs = F.softmax(teacher_outputs / T, dim=1) + 10**(-7)
    return T * T * F.kl_div(
        output_batch, teacher_outputs, reduction='batchmean')


def cl_ilr_kl_loss(y_s: Tensor, y_t: Tensor, T: float = 2.) -> Tensor:
    """MCL-OKD's ``DistillKL`` of ``main_cifar_cl_ilr.py``."""
    p_s = F.log_softmax(y_s / T, dim=1)
    p_t = F.softmax(y_t / T, dim=1)
    return F.kl_div(p_s, p_t, reduction='batchmean') * (T**2)


def cl_ilr_targets(logits: List[Tensor]) -> List[Tensor]:
    """Head i's target: the detached mean of the other heads' logits."""
    targets = []
    for i in range(len(logits)):
        ensemble = 0
        for j in range(len(logits)):
            if j != i:
                ensemble = ensemble + logits[j]
        targets.append((ensemble / (len(logits) - 1)).detach())
    return targets


def one_gated_ensemble(x: Tensor, logits: List[Tensor], fc_weight: Tensor,
                       fc_bias: Tensor, bn: torch.nn.BatchNorm1d) -> Tensor:
    """``x_m`` of ``ONE_ResNet.forward`` from the trunk output ``x`` (the
    reference's ``AvgPool2d(16)`` on its 16x16 map is the global mean)."""
    x_c = F.avg_pool2d(x, x.shape[-1])
    x_c = x_c.view(x_c.size(0), -1)
    x_c = F.linear(x_c, fc_weight, fc_bias)
    x_c = bn(x_c)
    x_c = F.relu(x_c)
    x_c = F.softmax(x_c, dim=1)
    num_classes = logits[0].shape[1]
    x_m = 0
    for i, z in enumerate(logits):
        x_m = x_m + x_c[:, i].repeat(num_classes, 1).transpose(0, 1) * z
    return x_m


def okddip_attention_targets(feats: List[Tensor], logits: List[Tensor],
                             query_weight: Tensor,
                             key_weight: Tensor) -> Tensor:
    """``x_m`` (B, C, N) of OKDDip's ``ResNet.forward`` (``en=False``)."""
    pro = None
    for i in range(len(feats)):
        x_3 = feats[i]
        proj_q = F.linear(x_3, query_weight)[:, None, :]
        proj_k = F.linear(x_3, key_weight)[:, None, :]
        x_3_1 = logits[i].unsqueeze(-1)
        if pro is None:
            proj_query, proj_key, pro = proj_q, proj_k, x_3_1
        else:
            proj_query = torch.cat([proj_query, proj_q], 1)
            proj_key = torch.cat([proj_key, proj_k], 1)
            pro = torch.cat([pro, x_3_1], -1)
    energy = torch.bmm(proj_query, proj_key.permute(0, 2, 1))
    attention = F.softmax(energy, dim=-1)
    return torch.bmm(pro, attention.permute(0, 2, 1))


def ffl_fusion(fmap: List[Tensor], dw_weight: Tensor,
               bn1: torch.nn.BatchNorm2d, pw_weight: Tensor,
               bn1_1: torch.nn.BatchNorm2d, fc_weight: Tensor,
               fc_bias: Tensor) -> Tensor:
    """FFL's ``Fusion_module.forward`` on the branches' maps."""
    input = torch.cat(fmap, 1)
    x = F.relu(bn1(F.conv2d(input, dw_weight, padding=1,
                            groups=input.shape[1])))
    x = F.relu(bn1_1(F.conv2d(x, pw_weight)))
    x = F.avg_pool2d(x, x.shape[-1])
    x = x.view(x.size(0), -1)
    return F.linear(x, fc_weight, fc_bias)


def sigmoid_rampup(current: float, rampup_length: float) -> float:
    """ONE's ``sigmoid_rampup`` of ``utils/ramps.py`` (FFL's ``utils.py``
    and OKDDip's ``get_current_consistency_weight`` of ``train_GL.py`` are
    the same code), called with the 0-based epoch."""
    if rampup_length == 0:
        return 1.0
    else:
        current = np.clip(current, 0.0, rampup_length)
        phase = 1.0 - current / rampup_length
        return float(np.exp(-5.0 * phase * phase))


def one_loss(x: Tensor, logits: List[Tensor], targets: Tensor,
             consistency_weight: float, fc_weight: Tensor, fc_bias: Tensor,
             bn: torch.nn.BatchNorm1d) -> Tensor:
    """``loss`` of ONE's ``train`` in ``cifar_one.py``: the CE of every
    branch and of the gated ensemble ``outputs4`` (not detached), plus the
    ramped ``KLLoss`` of every branch to ``outputs4`` (detached there)."""
    outputs4 = one_gated_ensemble(x, logits, fc_weight, fc_bias, bn)
    loss_cross = 0
    for outputs in logits + [outputs4]:
        loss_cross = loss_cross + F.cross_entropy(outputs, targets)
    loss_kl = 0
    for outputs in logits:
        loss_kl = loss_kl + one_kl_loss(outputs, outputs4)
    loss_kl = consistency_weight * loss_kl
    return loss_cross + loss_kl


def cl_ilr_loss(logits: List[Tensor], target: Tensor,
                kd_T: float = 2.) -> Tensor:
    """``loss`` of ``train`` in MCL-OKD's ``main_cifar_cl_ilr.py``: 0.5 CE
    of each head plus 0.5 ``DistillKL`` to the detached mean of the others
    (no ramp)."""
    loss_cls = 0.
    loss_div = 0.
    for i in range(len(logits)):
        loss_cls = loss_cls + 0.5 * F.cross_entropy(logits[i], target)
    ensembles = cl_ilr_targets(logits)
    for i in range(len(logits)):
        loss_div = loss_div + 0.5 * cl_ilr_kl_loss(logits[i], ensembles[i],
                                                   kd_T)
    return loss_cls + loss_div


def okddip_loss(feats: List[Tensor], logits: List[Tensor],
                labels_batch: Tensor, consistency_weight: float,
                query_weight: Tensor, key_weight: Tensor, T: float = 3.,
                alpha: float = 1.) -> Tensor:
    """``loss`` of OKDDip's ``train`` in ``train_GL.py`` (``--loss KL``):
    the last branch is the group leader ``x_stu``, the others the peers
    (``output_batch``). CE of all; ramped ``KL_Loss`` of each peer to its
    attention target and of the leader to the peers' mean, neither
    detached."""
    x_m = okddip_attention_targets(feats[:-1], logits[:-1], query_weight,
                                   key_weight)
    output_batch = torch.cat([z.unsqueeze(-1) for z in logits[:-1]], -1)
    x_stu = logits[-1]
    loss_true = 0
    loss_group = 0
    for i in range(len(logits) - 1):
        loss_true += F.cross_entropy(output_batch[:, :, i], labels_batch)
        loss_group += okddip_kl_loss(output_batch[:, :, i], x_m[:, :, i], T)
    return loss_true + F.cross_entropy(x_stu, labels_batch) + \
        alpha * consistency_weight * (loss_group + okddip_kl_loss(
            x_stu, torch.mean(output_batch, dim=2), T))


def ffl_loss(fmap: List[Tensor], logits: List[Tensor], targets: Tensor,
             consistency_weight: float, dw_weight: Tensor,
             bn1: torch.nn.BatchNorm2d, pw_weight: Tensor,
             bn1_1: torch.nn.BatchNorm2d, fc_weight: Tensor,
             fc_bias: Tensor) -> Tensor:
    """``loss`` of FFL's ``train`` in ``train_FFL.py``: CE of the two
    branches and of the fused logits; ramped ``KLLoss`` of each branch to
    the fused logits and of the fused logits to the branches' mean (both
    targets detached by ``KLLoss``)."""
    outputs1, outputs2 = logits
    ensemble_logit = (outputs1 + outputs2) / 2
    fused_logit = ffl_fusion(fmap, dw_weight, bn1, pw_weight, bn1_1,
                             fc_weight, fc_bias)
    loss_cross = F.cross_entropy(outputs1, targets) + F.cross_entropy(
        outputs2, targets) + F.cross_entropy(fused_logit, targets)
    loss_kl = consistency_weight * (
        one_kl_loss(outputs1, fused_logit) +
        one_kl_loss(outputs2, fused_logit) +
        one_kl_loss(fused_logit, ensemble_logit))
    return loss_cross + loss_kl


def hinton_kd(student: Tensor, teacher: Tensor, T: float) -> Tensor:
    r""":math:`T^2 \mathrm{KL}(p_t \| p_s)`, batch mean, of the KDCL and
    PCL papers (no shift of :math:`p_t`, nothing detached here)."""
    return F.kl_div(
        F.log_softmax(student / T, dim=1),
        F.softmax(teacher / T, dim=1),
        reduction='batchmean') * T**2


def kdcl_min_logit_loss(logits: List[Tensor], labels: Tensor,
                        alpha: float = 0.5, T: float = 4.) -> Tensor:
    r"""KDCL-MinLogit (Guo et al. 2020; no official code), from the paper:
    the teacher :math:`z^t_c = \min_i (z^i_c - z^i_y)`, detached, and
    :math:`\sum_i (1 - a)\,\mathrm{CE}(z^i, y) + a\,T^2\,
    \mathrm{KL}(p^t \| p^i)`."""
    shifted = []
    for z in logits:
        shifted.append(z - z[torch.arange(z.shape[0]), labels][:, None])
    teacher = shifted[0]
    for z in shifted[1:]:
        teacher = torch.minimum(teacher, z)
    teacher = teacher.detach()
    loss = 0
    for z in logits:
        loss = loss + (1 - alpha) * F.cross_entropy(z, labels) + \
            alpha * hinton_kd(z, teacher, T)
    return loss


def pcl_loss(feats: List[Tensor], logits: List[Tensor],
             mean_logits: List[Tensor], labels: Tensor,
             consistency_weight: float, fc_weight: Tensor, fc_bias: Tensor,
             T: float = 3.) -> Tensor:
    r"""PCL, as the re-implementation's ``LossWrapper`` (non-EMA branch):
    CE of the peer ensemble teacher :math:`z_e = W [h_1; \dots; h_N] + b`
    and of every branch; ramped, each branch's :math:`T^2` KL to
    :math:`z_e` (detached by the caller there: ``en_label``) and
    ``PMLoss``, the mean over :math:`j \ne i` of its KL to the
    temporal-mean branch j's logits ``mean_logits`` (detached)."""
    ensemble = F.linear(torch.cat(feats, dim=1), fc_weight, fc_bias)
    loss = F.cross_entropy(ensemble, labels)
    for i, z in enumerate(logits):
        loss_ce = F.cross_entropy(z, labels)
        loss_pe = hinton_kd(z, ensemble.detach(), T) * consistency_weight
        targets = [mean_logits[j] for j in range(len(logits)) if j != i]
        pm = 0
        for target in targets:
            pm = pm + hinton_kd(z, target.detach(), T)
        loss_pm = pm / len(targets) * consistency_weight
        loss = loss + loss_ce + loss_pe + loss_pm
    return loss
