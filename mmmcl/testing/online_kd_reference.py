"""Transcriptions of the online-KD reference implementations' computations.

Each function follows its reference's order of operations (module calls,
pooling, softmax dims, the 1e-7 shift, reductions), written from those
repositories' code as of their last commits:

- ONE: github.com/Lan1991Xu/ONE_NeurIPS2018, ``loss/kl_loss.py`` and
  ``models/cifar/resnet.py`` (``ONE_ResNet.forward``);
- OKDDip: github.com/DefangChen/OKDDip, ``utils.py`` (``KL_Loss``),
  ``models/model_cifar/resnet_GL.py`` (``ResNet.forward``, ``en=False``);
- FFL: github.com/Jangho-Kim/FFL-pytorch, ``our_network.py``
  (``Fusion_module.forward``) and ``utils.py`` (``KLLoss``);
- CL-ILR: github.com/winycg/MCL-OKD, ``main_cifar_cl_ilr.py`` (``KLDiv``,
  the per-head targets).

They take the parameters of mmmcl's modules as plain tensors, so a test can
compare the two on the same weights. Training never uses them.
"""
from typing import List

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
    """MCL-OKD's ``KLDiv`` of ``main_cifar_cl_ilr.py``."""
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
