"""The meta step under mmengine's AmpOptimWrapper (GradScaler).

On this CPU machine a stand-in device check lets AmpOptimWrapper build, and
its GradScaler is torch's CPU one (enabled, it refuses ``step`` without a
``scale``); its ``optim_context`` autocasts to bf16, as on a CPU it does.
"""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.models.distillers.meta_problem import cohort_meta_problem
from mmmcl.registry import MODELS
from mmmcl.testing import lmcl_model, train_progress

RESNET8 = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(type='mmpretrain.LinearClsHead', in_channels=64))
LMCL = lmcl_model([RESNET8, RESNET8],
                  num_classes=4,
                  meta=dict(interval=2, virtual_steps=2, proj_dim=8))
SGD = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-3)


@pytest.fixture(autouse=True)
def mmmcl_scope():
    with DefaultScope.overwrite_default_scope('mmmcl'):
        yield


def build() -> torch.nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(LMCL))
    model.init_weights()
    return model.train()


def wrappers(model, amp: bool, monkeypatch, scaling: bool = True):
    """``cohort`` and ``meta`` optimizer wrappers, both AMP or both plain.

    ``scaling=False``: AMP with a disabled scaler (the same bf16 autocast,
    gradients never scaled), the reference for theta.
    """
    kind = 'AmpOptimWrapper' if amp else 'OptimWrapper'
    if amp:  # stand-in device check: AmpOptimWrapper asserts a GPU
        monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                            lambda: True)
    built = build_optim_wrapper(
        model,
        dict(
            constructor='CohortOptimWrapperConstructor',
            cohort=dict(type=kind, optimizer=SGD),
            meta=dict(type=kind, optimizer=SGD)))
    if amp:
        for wrapper in built.values():
            wrapper.loss_scaler = torch.amp.GradScaler(
                'cpu', init_scale=2.**12, enabled=scaling)
    return built


def data(size=8):
    gen = torch.Generator().manual_seed(0)
    images = (torch.randn(size, 3, 16, 16, generator=gen) * 40 + 128)
    samples = [DataSample().set_gt_label(i // 2 % 4) for i in range(size)]
    return dict(inputs=list(images.clamp(0, 255).byte()),
                data_samples=samples)


def test_cpu_grad_scaler_refuses_an_unscaled_step():
    """What a plain ``AmpOptimWrapper.step()`` after a hand-written
    ``.grad`` meets (the meta step's old path)."""
    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([param], lr=0.1)
    param.grad = torch.ones(2)
    with pytest.raises((AssertionError, RuntimeError), match='scale'):
        torch.amp.GradScaler('cpu').step(optimizer)


def test_meta_step_applies_the_fp32_hypergradient_unscaled(monkeypatch):
    model = build()
    reference = copy.deepcopy(model)
    amp = wrappers(model, True, monkeypatch)
    plain = wrappers(reference, False, monkeypatch)
    batch = data()
    inputs = model.data_preprocessor(batch, True)['inputs']
    samples = batch['data_samples']

    # expected: the hypergradient in fp32, applied by the plain optimizer
    problem = cohort_meta_problem(reference, inputs, samples,
                                  plain['cohort'])
    hyper = reference.meta_step.hypergradient(problem)
    for p, g in zip(problem.phi, hyper.grads):
        p.grad = g
    plain['meta'].optimizer.step()

    phi_before = [p.clone() for p in model.meta_net.parameters()]
    stats = model.meta_update(inputs, samples, amp['cohort'], amp['meta'])
    assert stats['meta/outer_ce'].dtype == torch.float32
    assert torch.equal(stats['meta/outer_ce'], hyper.outer_loss)
    for p, expected, before in zip(model.meta_net.parameters(),
                                   reference.meta_net.parameters(),
                                   phi_before):
        assert torch.equal(p, expected)
    assert any(not torch.equal(p, b)
               for p, b in zip(model.meta_net.parameters(), phi_before))
    # the meta step is pure in theta
    for (name, p), q in zip(model.named_parameters(),
                            reference.parameters()):
        if not name.startswith('meta_net.'):
            assert torch.equal(p, q), name


def test_amp_train_step_with_the_meta_step(monkeypatch):
    """One AMP iteration (bf16 autocast, scaled backward) with the meta step
    due: the losses are fp32, theta takes the step an unscaled backward
    gives, and phi the fp32 hypergradient step."""
    model = build()
    reference = copy.deepcopy(model)
    scaled = wrappers(model, True, monkeypatch)
    unscaled = wrappers(reference, True, monkeypatch, scaling=False)
    dtypes = []
    conv = model.peers.members[0].backbone.stem[0]
    conv.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    theta_before = {n: p.clone() for n, p in model.named_parameters()}
    with train_progress(batch_idx=0):  # the meta step is due
        log = model.train_step(data(), scaled)
        ref_log = reference.train_step(data(), unscaled)

    assert dtypes[0] == torch.bfloat16  # the normal step ran under autocast
    assert dtypes[-1] == torch.float32  # the meta step's outer CE did not
    assert 'meta/lr' in log and 'meta/lr' in ref_log
    losses = {k: v for k, v in log.items() if 'loss' in k}
    assert losses and all(v.dtype == torch.float32 for v in losses.values())
    assert all(torch.isfinite(v) for v in losses.values())
    assert scaled['cohort'].loss_scaler.get_scale() == 2.**12  # no overflow
    moved = 0
    for (name, p), q in zip(model.named_parameters(),
                            reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7, msg=name)
        moved += not torch.equal(p, theta_before[name])
    assert moved > len(theta_before) // 2
