"""One whole training step of each zoo method through ``train_step``
against its reference: the loss of ``mmmcl/testing/online_kd_reference.py``
(the transcription ``test_online_kd_losses.py`` holds the loss to),
backpropagated and stepped by the reference's own optimizer(s), built as
its code builds them, and, for PCL, its temporal mean updated as the
re-implementation's ``src/utils/ema.py``. mmmcl's side is the CIFAR-100
config's model and ``optim_wrapper`` (constructor, parameter groups, weight
decays), float64, one batch at epoch 50 of the ramp.

Mutation check: each of these one-line bugs was made in turn and made this
file fail: FFL's config without the fusion module's ``decay_mult=0.1``
(``test_ffl_step``); ONE's config with ``nesterov=True``
(``test_one_step``).
"""
import copy
from typing import Callable, List

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseDataPreprocessor
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from torch import Tensor

from mmmcl.testing import online_kd_reference as ref
# that file's autouse fixtures, active here: float64 by default, the loop
# at epoch 50
from test_online_kd_losses import (CONFIGS, RAMP, at_epoch,  # noqa: I100,F401
                                   batch, build, float64)


def sgd(params, weight_decay: float, nesterov: bool) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=0.1, momentum=0.9,
                           weight_decay=weight_decay, nesterov=nesterov)


def step_both(config: str, num_views: int,
              reference_loss: Callable[[torch.nn.Module, object, Tensor],
                                       Tensor],
              reference_optimizers: Callable[[torch.nn.Module],
                                             List[torch.optim.Optimizer]],
              before_step: Callable = lambda model: None):
    """mmmcl's ``train_step`` on the model, the reference's step on a copy;
    both models after it, and the model before."""
    model = build(config)
    # float64 inputs as they are (the configs normalise uint8 images)
    model.data_preprocessor = BaseDataPreprocessor()
    before_step(model)
    reference = copy.deepcopy(model)
    initial = copy.deepcopy(model)
    inputs, labels, samples = batch(num_views)
    cfg = Config.fromfile(CONFIGS / config)
    with DefaultScope.overwrite_default_scope('mmmcl'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train_step(dict(inputs=inputs, data_samples=samples), wrapper)

    optimizers = reference_optimizers(reference)
    for optimizer in optimizers:
        optimizer.zero_grad()
    reference_loss(reference, inputs, labels).backward()
    for optimizer in optimizers:
        optimizer.step()
    return model, reference, initial


def assert_same_parameters(model, reference, initial):
    """Every parameter equal; most of them moved by the step."""
    moved = 0
    for (name, p), q, p0 in zip(model.named_parameters(),
                                reference.parameters(), initial.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=name)
        moved += not torch.equal(p, p0)
    assert moved > len(list(model.parameters())) // 2


def test_one_step():
    """ONE: SGD, momentum 0.9, no Nesterov, wd 1e-4 (``cifar_one.py:55``,
    ``scripts/ONE_ResNet32.sh``)."""

    def loss(model, inputs, labels):
        out, gate = model.peers(inputs), model.teachers.ensemble
        return ref.one_loss(out.trunk[0], out.logits, labels, RAMP,
                            gate.fc.weight, gate.fc.bias, gate.bn)

    model, reference, initial = step_both(
        'one/one_resnet32_1xb128-300e_cifar100.py', 0, loss,
        lambda m: [sgd(m.parameters(), 1e-4, nesterov=False)])
    assert_same_parameters(model, reference, initial)


def test_cl_ilr_step():
    """CL-ILR (MCL-OKD ``main_cifar_cl_ilr.py``): SGD Nesterov, wd 5e-4;
    the gradient rescaled at each split (in the forward of both)."""
    model, reference, initial = step_both(
        'cl_ilr/cl-ilr_resnet32_1xb128-300e_cifar100.py', 0,
        lambda m, x, y: ref.cl_ilr_loss(m.peers(x).logits, y),
        lambda m: [sgd(m.parameters(), 5e-4, nesterov=True)])
    assert_same_parameters(model, reference, initial)


def test_okddip_step():
    """OKDDip: SGD Nesterov, wd 5e-4 on every parameter, attention
    included (``train_GL.py:47, 454``)."""

    def loss(model, inputs, labels):
        out, attention = model.peers(inputs), model.teachers.attention
        return ref.okddip_loss(out.feats, out.logits, labels, RAMP,
                               attention.query.weight, attention.key.weight)

    model, reference, initial = step_both(
        'okddip/okddip_resnet32_1xb128-300e_cifar100.py', 0, loss,
        lambda m: [sgd(m.parameters(), 5e-4, nesterov=True)])
    assert_same_parameters(model, reference, initial)


def test_ffl_step():
    """FFL: two optimizers, the network's (Nesterov, wd 1e-4) and the
    fusion module's (Nesterov, wd 1e-5) (``train_FFL.py:84, 88``)."""

    def loss(model, inputs, labels):
        out, fusion = model.peers(inputs), model.teachers.fusion
        return ref.ffl_loss(out.maps, out.logits, labels, RAMP,
                            fusion.depthwise.conv.weight, fusion.depthwise.bn,
                            fusion.pointwise.conv.weight, fusion.pointwise.bn,
                            fusion.fc.weight, fusion.fc.bias)

    model, reference, initial = step_both(
        'ffl/ffl_resnet32_1xb128-300e_cifar100.py', 0, loss,
        lambda m: [sgd(m.peers.parameters(), 1e-4, nesterov=True),
                   sgd(m.teachers.fusion.parameters(), 1e-5, nesterov=True)])
    assert_same_parameters(model, reference, initial)


def test_kdcl_step():
    """KDCL (no code; the paper): the shared CIFAR recipe's SGD, Nesterov,
    wd 5e-4, one view per peer."""
    model, reference, initial = step_both(
        'kdcl/kdcl_resnet32x2_1xb128-300e_cifar100.py', 2,
        lambda m, x, y: ref.kdcl_min_logit_loss(m.peers(x).logits, y),
        lambda m: [sgd(m.parameters(), 5e-4, nesterov=True)])
    assert_same_parameters(model, reference, initial)


@pytest.mark.parametrize('ema_steps', [10])
def test_pcl_step(ema_steps):
    """PCL (the re-implementation): SGD Nesterov, wd 5e-4 over the peers
    and the ensemble (``trainer.py:42, 67``); the temporal mean steps after
    the update with decay min(1 - 1 / (step + 1), 0.999) over the
    parameters (``src/utils/ema.py:3-7``) and keeps the BN statistics of
    its own train-mode forward."""
    gen = torch.Generator().manual_seed(2)

    def lag(model):  # a temporal mean ema_steps in, behind the peers
        model.temporal_mean.steps.fill_(ema_steps)
        with torch.no_grad():
            for p in model.temporal_mean.module.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))

    def loss(model, inputs, labels):
        out, ensemble = model.peers(inputs), model.teachers.ensemble
        with torch.no_grad():
            mean_logits = model.temporal_mean.module(inputs).logits
        return ref.pcl_loss(out.feats, out.logits, mean_logits, labels, RAMP,
                            ensemble.fc.weight, ensemble.fc.bias)

    trained = [lambda m: [p for p in m.parameters() if p.requires_grad]]
    model, reference, initial = step_both(
        'pcl/pcl_resnet32_1xb128-300e_cifar100.py', 3, loss,
        lambda m: [sgd(trained[0](m), 5e-4, nesterov=True)], lag)
    alpha = min(1 - 1 / (ema_steps + 1), 0.999)
    with torch.no_grad():
        for ema, p in zip(reference.temporal_mean.module.parameters(),
                          reference.peers.parameters()):
            ema.mul_(alpha).add_(p, alpha=1 - alpha)
    assert_same_parameters(model, reference, initial)
    for (name, b), c in zip(model.temporal_mean.module.named_buffers(),
                            reference.temporal_mean.module.buffers()):
        torch.testing.assert_close(b, c, rtol=1e-10, atol=1e-12, msg=name)
