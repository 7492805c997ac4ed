from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size
from mmengine.optim import OptimWrapper
from torch import Tensor
from torch.func import functional_call

from ..utils import mean_over_ranks


class MetaStep:
    r"""Bi-level update of the meta-network phi of L-MCL (paper section 6).

    On the batch of the normal step and after it, theta (members, branches,
    embedding heads) takes ``virtual_steps`` virtual SGD steps on the
    weighted contrastive loss (w differentiable in phi), then one on the
    summed CE of all stages; the outer loss is that CE at the resulting
    theta, and its gradient with respect to phi flows through the unrolled
    steps (second order). The virtual SGD has its own momentum buffers,
    empty at every meta step, no Nesterov, and per parameter the lr and
    weight decay of the main optimizer's param group; it runs functionally
    (``torch.func.functional_call``), so theta, the main optimizer and
    every buffer (BN running statistics are restored) are left untouched.

    Mixed precision: the meta step runs after the normal step's
    ``optim_context``, outside autocast, so the hypergradient is computed in
    fp32 and applied by the meta optimizer's own step, bypassing a loss
    scaler (see :func:`step_unscaled`).

    On W > 1 processes each virtual step uses the gradient of the global
    batch: the ranks' inner gradients are averaged by a differentiable
    all-reduce (its backward all-reduces the incoming gradients, so the
    hypergradient of each rank's outer loss reaches every rank's inner
    gradient), and the hypergradient is averaged over the ranks, so phi
    takes the single-process step on every rank.

    Args:
        interval (int): Run every ``interval`` iterations, counted within
            the epoch as the reference does. Defaults to 50.
        virtual_steps (int): Virtual steps on the contrastive loss.
            Defaults to 2.
        momentum (float): Momentum of the virtual SGD. Defaults to 0.9.
    """

    def __init__(self,
                 interval: int = 50,
                 virtual_steps: int = 2,
                 momentum: float = 0.9) -> None:
        if interval < 1 or virtual_steps < 1:
            raise ValueError('`model.meta.interval` and `model.meta.'
                             'virtual_steps` must be >= 1, got '
                             f'{interval}, {virtual_steps}.')
        self.interval = interval
        self.virtual_steps = virtual_steps
        self.momentum = momentum

    def __call__(self,
                 model: nn.Module,
                 inputs: Tensor,
                 labels: Tensor,
                 cohort_wrapper: OptimWrapper,
                 meta_wrapper: OptimWrapper,
                 contrast_target: Optional[Tensor] = None
                 ) -> Dict[str, Tensor]:
        """Update phi by its hypergradient; return logged statistics.

        ``contrast_target``: what the contrast loss takes, the labels
        (default) or the bank rows of each sample.
        """
        phi = [p for p in model.meta_net.parameters() if p.requires_grad]
        outer = self.unrolled_outer_loss(
            model, inputs, labels, cohort_wrapper,
            contrast_target=contrast_target)
        hypergrads = torch.autograd.grad(outer, phi, allow_unused=True)
        meta_wrapper.optimizer.zero_grad()
        world_size = get_world_size()
        for p, g in zip(phi, hypergrads):
            p.grad = torch.zeros_like(p) if g is None else g.detach()
            if world_size > 1:
                all_reduce(p.grad, op='mean')
        norm = torch.stack([p.grad.norm() for p in phi]).norm()
        step_unscaled(meta_wrapper)
        meta_wrapper.optimizer.zero_grad()
        return {
            'meta/lr': torch.tensor(cohort_wrapper.get_lr()['lr'][0]),
            'meta/outer_ce': outer.detach(),
            'meta/hypergrad_norm': norm,
        }

    def unrolled_outer_loss(self,
                            model: nn.Module,
                            inputs: Tensor,
                            labels: Tensor,
                            cohort_wrapper: OptimWrapper,
                            create_graph: bool = True,
                            contrast_target: Optional[Tensor] = None
                            ) -> Tensor:
        """The outer CE after the virtual steps, differentiable in phi.

        Pure: the model's parameters and buffers (banks too) are left
        untouched.
        """
        if contrast_target is None:
            contrast_target = labels
        names, lrs, wds = self._virtual_sgd_params(model, cohort_wrapper)
        params = dict(model.named_parameters())
        theta = {n: params[n].detach().requires_grad_() for n in names}
        momentum_buf: Dict[str, Tensor] = {}
        for step in range(self.virtual_steps + 1):
            if step < self.virtual_steps:
                loss = self._contrast_objective(model, theta, inputs,
                                                contrast_target)
            else:
                loss = self._ce_objective(model, theta, inputs, labels)
            grads = torch.autograd.grad(
                loss,
                list(theta.values()),
                create_graph=create_graph,
                allow_unused=True)
            if get_world_size() > 1:
                grads = mean_over_ranks(grads)
            updated = {}
            for (n, p), g, lr, wd in zip(theta.items(), grads, lrs, wds):
                d = wd * p if g is None else g + wd * p
                if n in momentum_buf:
                    d = self.momentum * momentum_buf[n] + d
                momentum_buf[n] = d
                updated[n] = p - lr * d
            theta = updated
        return self._ce_objective(model, theta, inputs, labels)

    @staticmethod
    def _virtual_sgd_params(model: nn.Module, cohort_wrapper: OptimWrapper
                            ) -> Tuple[List[str], List[float], List[float]]:
        """Names of the theta parameters, with the current lr and weight
        decay of their param group in the main optimizer."""
        groups = cohort_wrapper.optimizer.param_groups
        group_of = {id(p): g for g in groups for p in g['params']}
        params = dict(model.named_parameters())
        names: List[str] = [
            n for n in model.theta_names()
            if params[n].requires_grad and id(params[n]) in group_of
        ]
        lrs = [group_of[id(params[n])]['lr'] for n in names]
        wds = [group_of[id(params[n])].get('weight_decay', 0.) for n in names]
        return names, lrs, wds

    @staticmethod
    def _forward(model: nn.Module, theta: Dict[str, Tensor],
                 inputs: Tensor) -> dict:
        """The cohort at parameters theta, in train mode, on copies of the
        buffers: BN statistics of the virtual steps never reach the model
        (nor the graph of an earlier step). The memory banks, which the
        forward only reads, are not copied."""
        buffers = {
            n: b.clone()
            for n, b in model.named_buffers()
            if not n.startswith('contrast_loss.')
        }
        return functional_call(model, (theta, buffers), (inputs, ),
                               dict(mode='tensor'))

    @classmethod
    def _contrast_objective(cls, model: nn.Module, theta: Dict[str, Tensor],
                            inputs: Tensor, target: Tensor) -> Tensor:
        """alpha VCL + gamma SoftVCL + beta ICL + lambda SoftICL, w(phi)."""
        out = cls._forward(model, theta, inputs)
        weights = model.meta_net(out['feats'])
        terms = model.contrast_losses(out['embeddings'], target, weights)
        return sum(terms.values())

    @classmethod
    def _ce_objective(cls, model: nn.Module, theta: Dict[str, Tensor],
                      inputs: Tensor, labels: Tensor) -> Tensor:
        """Summed CE of every stage of every member."""
        out = cls._forward(model, theta, inputs)
        return sum(model.classification_losses(out['logits'], labels).values())


def step_unscaled(wrapper: OptimWrapper) -> None:
    """Apply gradients that were never loss-scaled: clip, then step.

    The hypergradient is computed in fp32, outside autocast, so an
    ``AmpOptimWrapper``'s GradScaler has nothing to protect: loss scaling
    keeps fp16 gradients from underflowing, and there are none here. Its
    ``step`` would unscale gradients that were never scaled (torch's
    GradScaler refuses: no ``scale()`` since its last ``update()``); a
    scaler-aware meta step (scale the outer loss, backpropagate through the
    unrolled steps, unscale) would compute the same fp32 numbers times a
    power of two, and tie phi's steps to the scaler's skip-and-back-off
    schedule, which is about theta's fp16 backward. So this is
    :meth:`OptimWrapper.step` itself for every wrapper, AMP or not: the
    wrapper's gradient clipping, if configured, then the optimizer's step.
    """
    OptimWrapper.step(wrapper)

