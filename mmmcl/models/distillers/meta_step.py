from typing import Callable, Dict, List, NamedTuple, Sequence, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.optim import OptimWrapper
from torch import Tensor
from torch.profiler import record_function

#: An objective of the meta step: ``objective(theta, buffers)`` -> scalar,
#: the loss at parameters ``theta`` run on the buffers ``buffers`` (both
#: dicts of tensors keyed by name).
Objective = Callable[[Dict[str, Tensor], Dict[str, Tensor]], Tensor]

MOMENTUM_ADJOINTS = ('exact', 'reference')
REPLAY_BN_MODES = ('none', 'reference')
VIRTUAL_BUFFERS_MODES = ('fresh', 'carried')


class MetaProblem(NamedTuple):
    """What a meta step differentiates, built by the model that owns it."""
    theta: Dict[str, Tensor]  #: theta_0 (only the values are read)
    lrs: Sequence[float]  #: the lr of each entry of theta
    weight_decays: Sequence[float]  #: the weight decay of each
    buffers: Dict[str, Tensor]  #: the buffers the objectives run on
    inner: Objective  #: the K first virtual steps' loss, differentiable
    # in phi
    outer: Objective  #: the last virtual step's loss and the outer loss
    phi: Sequence[Tensor]  #: the meta parameters (leaves)


class Hypergradient(NamedTuple):
    """What :meth:`MetaStep.hypergradient` returns."""
    grads: List[Tensor]  #: d outer / d phi, one per meta parameter
    outer_loss: Tensor  #: the outer objective after the virtual steps


class MetaStep:
    r"""Bi-level update of the meta-network phi of L-MCL (paper section 6).

    theta takes ``virtual_steps`` (K) virtual SGD-momentum steps on the
    inner objective (differentiable in phi), then one on the outer one; the
    hypergradient is d outer(theta_{K+1}) / d phi through the K + 1 steps.
    The virtual SGD has its own momentum buffers, empty at every meta step,
    no Nesterov, and per parameter the lr and weight decay it is given.

    The steps run first-order, keeping only the detached theta_t; the
    hypergradient then comes from a reverse replay, one second-order graph
    at a time (reverse-mode through SGD with momentum mu): with
    a_theta = d outer / d theta_{K+1} and a_d = 0, for t = K .. 0,
    ``a_d = -lr a_theta + mu a_d``, (hv, g_phi) = a_d^T d g_t /
    d (theta_t, phi), ``a_theta += wd a_d + hv``, hypergradient += g_phi.
    So the extra memory is one step's graph whatever K, plus K + 1 flat
    copies of theta. theta is handled as one flat vector (no Python loop
    over parameters).

    The step is pure: it knows no model, only the parameters, buffers and
    objectives it is given. Each objective call runs on a copy of the
    buffers (which it may update in place or replace in the dict it gets),
    so BatchNorm statistics of the virtual steps never reach the model.

    Three switches reproduce the authors' ``MetaSGD``
    (``losses/meta_optimizers.py`` of winycg/L-MCL); the defaults are exact:

    - ``momentum_adjoint='reference'``: ``a_theta = (1 - lr wd) a_theta +
      mu a_d' + hv`` with a_d' the previous a_d (the reference adds the
      momentum adjoint where the exact one adds ``wd a_d``); its
      hypergradient departs from finite differences.
    - ``replay_bn='reference'``: the buffers the replay of step 0 leaves
      are written back to the given ones, as the reference's replay keeps
      its state (``rollback=True``): one extra BatchNorm running-statistics
      update (and ``num_batches_tracked`` + 1) at theta_0 per meta step,
      and with carried buffers the objective's other writes (the memory
      banks' update at theta_0).
    - ``virtual_buffers='carried'``: step t + 1 runs on the buffers that
      step t left, and the replay of step t on those step t started from,
      as ``MetaSGD`` snapshots the modules' state dicts (the memory banks,
      which its contrastive loss writes in every call, included). K + 1
      copies of the buffers are kept. ``'fresh'``: every step runs on the
      given buffers.

    On W > 1 processes every gradient of the virtual steps, the outer
    gradient and each replayed vector-Jacobian product are averaged over
    the ranks: the objectives compute each rank's share (their collectives
    carry the gradients of gathered rows back to their rank), so every rank
    follows the global batch's trajectory and phi gets the single-process
    hypergradient.

    Args:
        interval (int): Run every ``interval`` iterations, counted within
            the epoch as the reference does. Defaults to 50.
        virtual_steps (int): Virtual steps K on the inner objective.
            Defaults to 2.
        momentum (float): Momentum mu of the virtual SGD. Defaults to 0.9.
        momentum_adjoint (str): ``'exact'`` or ``'reference'``.
            Defaults to ``'exact'``.
        replay_bn (str): ``'none'`` (no buffer of the model changes) or
            ``'reference'``. Defaults to ``'none'``.
        virtual_buffers (str): ``'fresh'`` or ``'carried'``. Defaults to
            ``'fresh'``.
    """

    def __init__(self,
                 interval: int = 50,
                 virtual_steps: int = 2,
                 momentum: float = 0.9,
                 momentum_adjoint: str = 'exact',
                 replay_bn: str = 'none',
                 virtual_buffers: str = 'fresh') -> None:
        if interval < 1 or virtual_steps < 1:
            raise ValueError('`model.meta.interval` and `model.meta.'
                             'virtual_steps` must be >= 1, got '
                             f'{interval}, {virtual_steps}.')
        if momentum_adjoint not in MOMENTUM_ADJOINTS:
            raise ValueError('`model.meta.momentum_adjoint` must be one of '
                             f'{MOMENTUM_ADJOINTS}, got {momentum_adjoint!r}.')
        if replay_bn not in REPLAY_BN_MODES:
            raise ValueError('`model.meta.replay_bn` must be one of '
                             f'{REPLAY_BN_MODES}, got {replay_bn!r}.')
        if virtual_buffers not in VIRTUAL_BUFFERS_MODES:
            raise ValueError('`model.meta.virtual_buffers` must be one of '
                             f'{VIRTUAL_BUFFERS_MODES}, got '
                             f'{virtual_buffers!r}.')
        self.interval = interval
        self.virtual_steps = virtual_steps
        self.momentum = momentum
        self.momentum_adjoint = momentum_adjoint
        self.replay_bn = replay_bn
        self.virtual_buffers = virtual_buffers

    @property
    def carries_buffers(self) -> bool:
        """Whether each virtual step starts from the buffers the previous
        one left (``virtual_buffers='carried'``)."""
        return self.virtual_buffers == 'carried'

    def __call__(self, problem: MetaProblem,
                 meta_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """Step phi by its hypergradient; return logged statistics."""
        hyper = self.hypergradient(problem)
        meta_wrapper.optimizer.zero_grad()
        for p, g in zip(problem.phi, hyper.grads):
            p.grad = g
        norm = torch.stack([g.norm() for g in hyper.grads]).norm()
        step_unscaled(meta_wrapper)
        meta_wrapper.optimizer.zero_grad()
        return {
            'meta/outer_ce': hyper.outer_loss,
            'meta/hypergrad_norm': norm,
        }

    def hypergradient(self, problem: MetaProblem) -> Hypergradient:
        """d outer(theta_{K+1}) / d phi; theta and the buffers stay
        untouched (but for ``replay_bn='reference'``), each objective call
        runs on a copy of the buffers."""
        theta, lrs, weight_decays, buffers, inner, outer, phi = problem
        flat_theta = FlatParams(theta, lrs, weight_decays)
        lr, wd, mu = flat_theta.lr, flat_theta.weight_decay, self.momentum
        objectives = [inner] * self.virtual_steps + [outer]

        # Forward: first-order virtual steps, keeping every theta_t and the
        # buffers each started from.
        snapshots, states = [], []
        current, state = flat_theta.values, buffers
        buf = None
        with record_function('meta_step/virtual_steps'):
            for objective in objectives:
                snapshots.append(current)
                states.append(state)
                step_state = _copy(state)
                grad = flat_theta.grad(objective, current, step_state)
                if self.carries_buffers:
                    state = step_state
                direction = grad + wd * current
                buf = direction if buf is None else mu * buf + direction
                current = current - lr * buf
            leaf = current.requires_grad_()
            outer_loss = outer(flat_theta.unflatten(leaf), _copy(state))
            adj_theta = _mean_over_ranks(
                torch.autograd.grad(outer_loss, leaf)[0])

        # Reverse replay, one second-order graph at a time.
        hypergrads = [torch.zeros_like(p) for p in phi]
        adj_buf = torch.zeros_like(adj_theta)
        with record_function('meta_step/reverse_replay'):
            for t in reversed(range(len(objectives))):
                step_state = _copy(states[t])
                leaf = snapshots[t].requires_grad_()
                loss = objectives[t](flat_theta.unflatten(leaf), step_state)
                if t == 0 and self.replay_bn == 'reference':
                    with torch.no_grad():
                        for name, value in buffers.items():
                            value.copy_(step_state[name])
                grad = torch.autograd.grad(loss, leaf, create_graph=True)[0]
                prev_adj_buf = adj_buf
                adj_buf = -lr * adj_theta + mu * prev_adj_buf
                wrt = ([leaf] if t > 0 else []) + (
                    list(phi) if t < self.virtual_steps else [])
                vjps = torch.autograd.grad(
                    grad, wrt, grad_outputs=adj_buf, allow_unused=True)
                vjps = [_mean_over_ranks(v) if v is not None else None
                        for v in vjps]
                if t > 0:  # a None hvp: the gradient is affine in theta
                    hvp = vjps[0] if vjps[0] is not None else 0.
                    if self.momentum_adjoint == 'exact':
                        adj_theta = adj_theta + wd * adj_buf + hvp
                    else:
                        adj_theta = ((1 - lr * wd) * adj_theta +
                                     mu * prev_adj_buf + hvp)
                    vjps = vjps[1:]
                for h, v in zip(hypergrads, vjps):
                    if v is not None:
                        h.add_(v)
        return Hypergradient(hypergrads, outer_loss.detach())


class FlatParams:
    """Parameters as one flat vector, with their per-entry lr and weight
    decay, and views back to named tensors.

    Args:
        params (dict[str, Tensor]): Named tensors, all of one dtype.
        lrs (Sequence[float]): One lr per entry.
        weight_decays (Sequence[float]): One weight decay per entry.
    """

    def __init__(self, params: Dict[str, Tensor], lrs: Sequence[float],
                 weight_decays: Sequence[float]) -> None:
        if not len(params) == len(lrs) == len(weight_decays):
            raise ValueError('One lr and one weight decay per parameter: '
                             f'got {len(params)} parameters, {len(lrs)} lrs '
                             f'and {len(weight_decays)} weight decays.')
        self.names = list(params)
        self.shapes = [p.shape for p in params.values()]
        self.numels = [p.numel() for p in params.values()]
        self.values = torch.cat(
            [p.detach().reshape(-1) for p in params.values()])
        sizes = torch.tensor(self.numels, device=self.values.device)
        self.lr = self._per_entry(lrs, sizes)
        self.weight_decay = self._per_entry(weight_decays, sizes)

    def _per_entry(self, values: Sequence[float], sizes: Tensor) -> Tensor:
        per_param = torch.tensor(
            values, dtype=self.values.dtype, device=self.values.device)
        return per_param.repeat_interleave(sizes)

    def unflatten(self, flat: Tensor) -> Dict[str, Tensor]:
        """Named views of ``flat`` (N, ), shaped as the parameters."""
        return {
            n: part.view(shape)
            for n, part, shape in zip(self.names, flat.split(self.numels),
                                      self.shapes)
        }

    def grad(self, objective: Objective, flat: Tensor,
             buffers: Dict[str, Tensor]) -> Tensor:
        """First-order gradient of ``objective`` at ``flat`` (N, ),
        averaged over the ranks."""
        leaf = flat.detach().requires_grad_()
        loss = objective(self.unflatten(leaf), buffers)
        return _mean_over_ranks(torch.autograd.grad(loss, leaf)[0])


def sgd_hyperparams(params: Dict[str, Tensor], wrapper: OptimWrapper
                    ) -> Tuple[List[float], List[float]]:
    """The current lr and weight decay of each parameter's group in the
    wrapper's optimizer.

    Raises:
        ValueError: A parameter that the optimizer does not hold.
    """
    group_of = {
        id(p): group
        for group in wrapper.optimizer.param_groups for p in group['params']
    }
    missing = [n for n, p in params.items() if id(p) not in group_of]
    if missing:
        raise ValueError('The meta step steps theta with the lr and weight '
                         'decay of the main optimizer, which does not hold '
                         f'{missing[:5]}: give every trainable parameter of '
                         'the cohort to `optim_wrapper.cohort`.')
    groups = [group_of[id(p)] for p in params.values()]
    return ([g['lr'] for g in groups],
            [g.get('weight_decay', 0.) for g in groups])


def _copy(buffers: Dict[str, Tensor]) -> Dict[str, Tensor]:
    return {n: b.clone() for n, b in buffers.items()}


def _mean_over_ranks(tensor: Tensor) -> Tensor:
    if get_world_size() > 1:
        tensor = tensor.detach().clone()
        all_reduce(tensor, op='mean')
    return tensor.detach()


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
