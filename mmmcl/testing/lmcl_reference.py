"""A literal transcription of the authors' L-MCL training step (CIFAR).

Written from winycg/L-MCL (commit 2c0901e): ``losses/meta_optimizers.py``
(``MetaSGD``), ``main_layer_mcl_cifar_meta.py`` (``train``, one batch, and
``inner_objective`` / ``outer_objective``), ``losses/cifar_sup_layer_mcl_
meta_loss.py`` (``SupMCL``, ``Sup_MCL_Loss_Meta``, ``KLDiv``) and
``utils.py`` (``DistillKL``), device-agnostic (no ``.cuda()``), keeping
their order of operations. The networks, the embedding heads, the
aggregator and the meta-network are the modules of a built
:class:`CohortDistiller` (their forward is tested against the reference's
definitions elsewhere); everything the step does with them is transcribed
here. ``zero_grad`` keeps zero gradients (``set_to_none=False``), the
default of the torch 1.x the reference ran on: a parameter that an objective
does not use still takes its weight decay and momentum in a virtual step.
Tests compare a whole mmmcl ``train_step`` with
:meth:`ReferenceLMCL.train_batch` on copies of one model. Training never
uses this module.
"""
import copy
from typing import Callable, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch import Tensor


class MetaSGD(optim.SGD):
    """``losses/meta_optimizers.py``: SGD that records each step's state
    and objective, then replays them in reverse (``meta_backward``)."""

    def __init__(self, params, modules: List[nn.Module], lr: float = 0.1,
                 momentum: float = 0., weight_decay: float = 0.,
                 rollback: bool = False) -> None:
        super().__init__(params, lr, momentum=momentum,
                         weight_decay=weight_decay)
        self.prev_states = []
        self.modules = modules + [self]
        self.rollback = rollback

    def parameters(self):
        for pg in self.param_groups:
            for p in pg['params']:
                yield p

    def get_state(self):
        return copy.deepcopy([m.state_dict() for m in self.modules])

    def set_state(self, state) -> None:
        for m, s in zip(self.modules, state):
            m.load_state_dict(s)

    def step(self, objective: Callable, *args, **kwargs) -> None:
        if objective is not None:
            self.prev_states.append((self.get_state(), objective, args,
                                     kwargs))
            loss = objective(*args, **kwargs)
            loss.backward()
        super().step()

    def meta_backward(self) -> None:
        alpha_groups = []
        for pg in self.param_groups:
            alpha_groups.append([])
            for p in pg['params']:
                if p.grad is None:
                    p.grad = torch.zeros_like(p.data)
                grad = p.grad.data.clone()
                alpha_groups[-1].append((grad, torch.zeros_like(grad)))

        curr_state = self.get_state()
        for prev_state in reversed(self.prev_states):
            state, objective, args, kwargs = prev_state
            self.set_state(state)
            loss = objective(*args, **kwargs)
            grad = torch.autograd.grad(loss, list(self.parameters()),
                                       create_graph=True, allow_unused=True)
            grad = {p: g for p, g in zip(self.parameters(), grad)}
            X = 0.0
            for pg, ag in zip(self.param_groups, alpha_groups):
                lr = pg['lr']
                for p, a in zip(pg['params'], ag):
                    g = grad[p]
                    if g is not None:
                        X = X + g.mul(a[0].mul(-lr) + a[1]).sum()
            self.zero_grad(set_to_none=False)
            X.backward()
            for pg, ag in zip(self.param_groups, alpha_groups):
                lr = pg['lr']
                wd = pg['weight_decay']
                momentum = pg['momentum']
                for p, a in zip(pg['params'], ag):
                    a_new = (a[0].mul(1 - lr * wd).add_(a[1]).add_(
                        p.grad.data),
                             a[1].mul(momentum).add_(a[0],
                                                     alpha=-lr * momentum))
                    a[0].copy_(a_new[0])
                    a[1].copy_(a_new[1])
        self.prev_states = []
        if not self.rollback:
            self.set_state(curr_state)


class KLDiv(nn.Module):
    """``cifar_sup_layer_mcl_meta_loss.py``: weighted KL of contrast rows."""

    def __init__(self, T: float) -> None:
        super().__init__()
        self.T = T

    def forward(self, y_s: Tensor, y_t: Tensor, weights: Tensor) -> Tensor:
        log_p_s = F.log_softmax(y_s / self.T, dim=1)
        log_p_t = F.log_softmax(y_t / self.T, dim=1)
        p_t = F.softmax(y_t / self.T, dim=1)
        input_size = p_t.size(0)
        return (self.T**2) * (weights * p_t *
                              (log_p_t - log_p_s)).sum() / input_size


def sup_mcl(embeddings_a: Tensor, embeddings_b: Tensor, labels: Tensor,
            weight: Tensor, tau: float, kl: KLDiv):
    """``SupMCL.forward``: the four terms of one block, weight (B, 1)."""
    labels = labels.unsqueeze(0)
    eye = torch.eye(labels.size(1), dtype=embeddings_a.dtype,
                    device=embeddings_a.device)
    intra_mask = torch.eq(labels, labels.T).to(eye) - eye
    diag_mask = 1. - eye

    inter_logits = []
    soft_icl_loss = 0.
    cos_simi_ij = torch.div(torch.mm(embeddings_a, embeddings_b.T), tau)
    inter_logits.append(cos_simi_ij)
    cos_simi_ji = torch.div(torch.mm(embeddings_b, embeddings_a.T), tau)
    inter_logits.append(cos_simi_ji)
    soft_icl_loss += kl(cos_simi_ij, cos_simi_ji.detach(), weight)
    soft_icl_loss += kl(cos_simi_ji, cos_simi_ij.detach(), weight)

    def supcon(logits: List[Tensor]):
        # the loop over `inter_logits` (ICL) and `intra_logits` (VCL)
        loss = 0.
        for logit in logits:
            log_prob = logit - torch.log(
                (torch.exp(logit) * diag_mask).sum(1, keepdim=True))
            mean_log_prob_pos = (intra_mask * log_prob * weight).sum(1) / \
                intra_mask.sum(1)
            loss += -mean_log_prob_pos.mean()
        return loss

    icl_loss = supcon(inter_logits)

    intra_logits = [
        torch.div(torch.mm(embeddings_a, embeddings_a.T), tau),
        torch.div(torch.mm(embeddings_b, embeddings_b.T), tau)
    ]
    soft_vcl_loss = 0.
    soft_vcl_loss += kl(intra_logits[0], intra_logits[1].detach(), weight)
    soft_vcl_loss += kl(intra_logits[1], intra_logits[0].detach(), weight)

    vcl_loss = supcon(intra_logits)
    return vcl_loss, soft_vcl_loss, icl_loss, soft_icl_loss


class ReferenceNet(nn.Module):
    """``multi_ResNet``: ``net(x)`` -> (features[m][s], logits[m][s]),
    over a cohort's members and branches."""

    def __init__(self, cohort: nn.Module) -> None:
        super().__init__()
        self.peers = cohort.peers

    def forward(self, x: Tensor):
        out = self.peers(x)
        return ([list(f) for f in out.feats_by_stage()],
                [list(z) for z in out.logits_by_stage()])


class ReferenceMCLLoss(nn.Module):
    """``Sup_MCL_Loss_Meta`` over a cohort's embedding heads."""

    def __init__(self, cohort: nn.Module, tau: float, kd_T: float) -> None:
        super().__init__()
        self.embed_list = cohort.terms.contrast.embed_heads
        self.tau = tau
        self.kl = KLDiv(kd_T)

    def forward(self, embeddings, labels: Tensor, weights: Sequence[Tensor]):
        for i in range(len(embeddings)):
            for j in range(len(embeddings[i])):
                embeddings[i][j] = self.embed_list[i][j](embeddings[i][j])
        return sum_over_blocks(
            embeddings, weights,
            lambda i, j, a, b, weight: sup_mcl(a, b, labels, weight, self.tau,
                                               self.kl))


def sum_over_blocks(embeddings, weights: Sequence[Tensor],
                    block_terms: Callable):
    """The block loop of ``Sup_MCL_Loss_Meta.forward`` (both scripts): for
    every net pair i != j and stage pair (k, z), in that order, the four
    terms ``block_terms(i, j, e_ik, e_jz, w)`` with w = ``weights[count]``
    (B, 1), summed."""
    vcl_all = soft_vcl_all = icl_all = soft_icl_all = 0.
    count = 0
    for i in range(len(embeddings)):
        for j in range(len(embeddings)):
            if i == j:
                continue
            for k in range(len(embeddings[i])):
                for z in range(len(embeddings[j])):
                    weight = weights[count].unsqueeze(-1)
                    vcl, soft_vcl, icl, soft_icl = block_terms(
                        i, j, embeddings[i][k], embeddings[j][z], weight)
                    count += 1
                    vcl_all += vcl
                    soft_vcl_all += soft_vcl
                    icl_all += icl
                    soft_icl_all += soft_icl
    return vcl_all, soft_vcl_all, icl_all, soft_icl_all


def distill_kl(y_s: Tensor, y_t: Tensor, T: float) -> Tensor:
    """``utils.DistillKL``."""
    p_s = F.log_softmax(y_s / T, dim=1)
    p_t = F.softmax(y_t / T, dim=1)
    return F.kl_div(p_s, p_t, reduction='batchmean') * (T**2)


def normal_update(script, inputs: Tensor, targets: Tensor,
                  criterion_mcl: Callable) -> None:
    """The normal update of one batch in ``train()``, the same in
    ``main_layer_mcl_cifar_meta.py`` (186-215) and
    ``main_layer_mcl_imagenet_meta.py`` (133-158).

    Args:
        script: Its objects: ``optimizer``, ``net``,
            ``loss_weight_network``, ``aggregator``, ``weights`` (alpha,
            gamma, beta, lambda), ``kd_T``.
        criterion_mcl (Callable): ``criterion_mcl(embeddings, weights)``
            -> the four terms, as that script calls it.
    """
    script.optimizer.zero_grad(set_to_none=False)
    embeddings, logits = script.net(inputs)
    with torch.no_grad():
        weights = list(script.loss_weight_network(embeddings))
    loss_cls = torch.zeros((), dtype=inputs.dtype)
    loss_logit_kd = torch.zeros((), dtype=inputs.dtype)
    for i in range(len(logits)):
        for j in range(len(logits[i])):
            loss_cls = loss_cls + F.cross_entropy(logits[i][j], targets)
    aggregated_logits = [
        agg(embeddings[i], logits[i])
        for i, agg in enumerate(script.aggregator)
    ]
    for i in range(len(logits)):
        loss_cls = loss_cls + F.cross_entropy(aggregated_logits[i], targets)
    for i in range(len(logits)):
        for j in range(len(logits)):
            loss_logit_kd += distill_kl(logits[i][-1],
                                        aggregated_logits[j].detach(),
                                        script.kd_T)
    alpha, gamma, beta, lam = script.weights
    loss_vcl, loss_soft_vcl, loss_icl, loss_soft_icl = criterion_mcl(
        embeddings, weights)
    loss_mcl = alpha * loss_vcl + gamma * loss_soft_vcl \
        + beta * loss_icl + lam * loss_soft_icl
    loss = loss_cls + loss_logit_kd + loss_mcl
    loss.backward()
    script.optimizer.step()


class ReferenceLMCL:
    """The objects of ``main_layer_mcl_cifar_meta.py`` around a cohort.

    Args:
        cohort (CohortDistiller): An L-MCL cohort (its modules are used and
            updated in place).
        lr (float): The current lr of every optimizer (``adjust_lr``).
        weight_decay (float): ``--weight-decay``.
        alpha, gamma, beta, lam (float): The loss weights.
        tau (float): Contrast temperature. kd_T (float): KL temperature.
        times (int): Virtual contrastive steps. meta_freq (int): Interval.
    """

    def __init__(self, cohort: nn.Module, lr: float, weight_decay: float,
                 alpha: float = 0.1, gamma: float = 1., beta: float = 0.1,
                 lam: float = 1., tau: float = 0.1, kd_T: float = 3.,
                 times: int = 2, meta_freq: int = 50) -> None:
        self.net = ReferenceNet(cohort)
        self.criterion_mcl = ReferenceMCLLoss(cohort, tau, kd_T)
        self.aggregator = cohort.teachers.aggregator.aggregators
        self.loss_weight_network = cohort.meta_net
        self.weights = (alpha, gamma, beta, lam)
        self.kd_T = kd_T
        self.times = times
        self.meta_freq = meta_freq
        build_optimizers(self, lr, weight_decay)

    def inner_objective(self, data) -> Tensor:
        inputs, targets = data[0], data[1]
        embeddings, logits = self.net(inputs)
        weights = list(self.loss_weight_network(embeddings))
        alpha, gamma, beta, lam = self.weights
        loss_vcl, loss_soft_vcl, loss_icl, loss_soft_icl = \
            self.criterion_mcl(embeddings, targets, weights)
        return alpha * loss_vcl + gamma * loss_soft_vcl \
            + beta * loss_icl + lam * loss_soft_icl

    def outer_objective(self, data) -> Tensor:
        return outer_objective(self.net, data[0], data[1])

    def train_batch(self, batch_idx: int, inputs: Tensor,
                    targets: Tensor) -> None:
        """One iteration of ``train()``'s loop: the normal update, then,
        when ``batch_idx % meta_freq == 0``, the meta-optimisation."""
        normal_update(self, inputs, targets,
                      lambda e, w: self.criterion_mcl(e, targets, w))

        if batch_idx % self.meta_freq == 0:
            self.meta_optimisation(inputs, targets)

    def meta_optimisation(self, inputs: Tensor, targets: Tensor) -> None:
        """``train()``'s meta-optimisation block (:func:`meta_optimisation`).
        """
        meta_optimisation(self, (inputs, targets))


def build_optimizers(script, lr: float, weight_decay: float) -> None:
    """The three optimizers of both scripts (CIFAR 396-410, ImageNet
    411-424): ``optimizer`` over the nets, the loss's embedding heads and
    the aggregators; ``meta_optimizer`` (``MetaSGD``) over the nets and the
    loss, snapshotting both modules; ``weight_optimizer`` over phi."""
    trainable_list = nn.ModuleList(
        [script.net, script.criterion_mcl, script.aggregator])
    script.optimizer = optim.SGD(
        trainable_list.parameters(), lr=lr, momentum=0.9,
        weight_decay=weight_decay, nesterov=True)
    target_params = list(script.net.parameters()) + list(
        script.criterion_mcl.parameters())
    script.meta_optimizer = MetaSGD(
        target_params, [script.net, script.criterion_mcl], lr=lr,
        momentum=0.9, weight_decay=weight_decay, rollback=True)
    script.weight_optimizer = optim.SGD(
        script.loss_weight_network.parameters(), lr=lr, momentum=0.9,
        weight_decay=weight_decay, nesterov=True)


def outer_objective(net: nn.Module, inputs: Tensor,
                    targets: Tensor) -> Tensor:
    """``outer_objective`` of both scripts (CIFAR 141-149, ImageNet
    84-92): the CE of every stage."""
    embeddings, logits = net(inputs)
    loss_cls = torch.zeros((), dtype=inputs.dtype)
    for i in range(len(logits)):
        for j in range(len(logits[i])):
            loss_cls = loss_cls + F.cross_entropy(logits[i][j], targets)
    return loss_cls


def meta_optimisation(script, data: tuple) -> None:
    """The meta-optimisation block of ``train()``, the same in
    ``main_layer_mcl_cifar_meta.py`` (239-255) and
    ``main_layer_mcl_imagenet_meta.py`` (183-201): ``times`` virtual steps
    on the inner objective, one on the outer, ``meta_backward``, phi's step.

    Args:
        script: Its objects: ``meta_optimizer``, ``weight_optimizer``,
            ``inner_objective``, ``outer_objective``, ``times``.
        data (tuple): What the objectives take, as that script builds it.
    """
    for _ in range(script.times):
        script.meta_optimizer.zero_grad(set_to_none=False)
        script.meta_optimizer.step(script.inner_objective, data)
    script.meta_optimizer.zero_grad(set_to_none=False)
    script.meta_optimizer.step(script.outer_objective, data)
    script.meta_optimizer.zero_grad(set_to_none=False)
    script.weight_optimizer.zero_grad(set_to_none=False)
    script.outer_objective(data).backward()
    script.meta_optimizer.meta_backward()
    script.weight_optimizer.step()
