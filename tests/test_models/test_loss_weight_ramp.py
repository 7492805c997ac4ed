"""LossWeightRamp: the factor's formula at the MessageHub's epoch or
iteration, its effect on the distiller's terms and gradients, old state
dicts, config errors."""
import copy
import math
from collections import OrderedDict

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.models.losses import LossWeightRamp
from mmmcl.registry import MODELS
from mmmcl.testing import lmcl_model, train_progress

NUM_CLASSES = 4
RESNET8 = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(type='mmpretrain.LinearClsHead', in_channels=64))
LMCL = lmcl_model([RESNET8, RESNET8],
                  num_classes=NUM_CLASSES,
                  meta=dict(interval=2, virtual_steps=2, proj_dim=8))
# MCL with the logit KD to the cohort's mean
MCL_MEAN = lmcl_model([RESNET8, RESNET8],
                      num_classes=NUM_CLASSES,
                      aux_depth=None,
                      teachers=dict(
                          mean=dict(target=dict(type='PeerMeanTarget'))),
                      distill=[dict(teacher='mean')])
DML = dict(
    type='CohortDistiller',
    peers=dict(type='IndependentPeers', members=[RESNET8, RESNET8]),
    num_classes=NUM_CLASSES,
    teachers=dict(mutual=dict(target=dict(type='OtherPeersTarget'))),
    distill=[dict(teacher='mutual')])
RAMPED = ('contrast.loss_vcl', 'contrast.loss_soft_vcl', 'contrast.loss_icl',
          'contrast.loss_soft_icl', 'peer0.loss_kd_aggregator',
          'peer1.loss_kd_aggregator')


@pytest.fixture(autouse=True)
def mmmcl_scope():
    with DefaultScope.overwrite_default_scope('mmmcl'):
        yield


def build(base=LMCL, **kwargs):
    cfg = copy.deepcopy(base)
    cfg.update(kwargs)
    torch.manual_seed(0)
    model = MODELS.build(cfg).double()
    model.init_weights()
    return model


def batch(size=8):
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(size, 3, 16, 16, generator=gen, dtype=torch.float64)
    samples = [
        DataSample().set_gt_label(i // 2 % NUM_CLASSES) for i in range(size)
    ]
    return inputs, samples


@pytest.mark.parametrize('t', [0, 1, 20, 40, 79, 80, 81, 300])
def test_sigmoid_by_epoch_matches_formula(t):
    ramp = LossWeightRamp('sigmoid', length=80, by_epoch=True)
    expected = math.exp(-5 * (1 - min(t, 80) / 80)**2)
    with train_progress(epoch=t, iteration=1000 * t + 7):
        assert ramp.factor == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize('it', [0, 3, 25, 50, 99])
def test_linear_by_iteration_matches_formula(it):
    ramp = LossWeightRamp('linear', length=50, by_epoch=False)
    with train_progress(epoch=1, iteration=it):
        assert ramp.factor == pytest.approx(min(it, 50) / 50, rel=1e-12)


def test_old_state_dict_loads_and_t_is_the_message_hubs():
    """Version 1 kept t in a buffer ``progress``: its state dicts load
    strictly; t is the MessageHub's, not the stored one."""
    ramp = LossWeightRamp('sigmoid', length=10)
    assert ramp.state_dict() == {}
    old = OrderedDict(progress=torch.tensor(9., dtype=torch.float64))
    old._metadata = {'': dict(version=1)}
    ramp.load_state_dict(old)
    with train_progress(epoch=4):
        assert ramp.factor == pytest.approx(math.exp(-5 * .36))


def test_bad_ramps_fail_naming_the_field():
    with pytest.raises(ValueError, match='shape'):
        LossWeightRamp('cosine')
    with pytest.raises(ValueError, match=r'loss_ramp.terms` names .kd_typo'):
        build(loss_ramp=dict(type='LossWeightRamp', terms=('kd_typo', )))
    with pytest.raises(ValueError, match='already ramps'):
        build(loss_ramp=[
            dict(type='LossWeightRamp', terms=('kd_aggregator', 'icl')),
            dict(type='LossWeightRamp', terms=('icl', ))
        ])
    # DML has only the logit KD term
    with pytest.raises(ValueError, match=r"\('kd_mutual',\)"):
        build(DML,
              loss_ramp=dict(type='LossWeightRamp', terms=('soft_icl', )))


def test_ramp_scales_each_term_and_its_gradient():
    """At factor f every distillation term and its gradient are f times
    the unramped ones; CE terms are untouched."""
    model = build(loss_ramp=dict(
        type='LossWeightRamp', shape='linear', length=10, by_epoch=False))
    params = [p for p in model.parameters() if p.requires_grad]
    inputs, samples = batch()

    def terms_and_grads(iteration):
        with train_progress(iteration=iteration):
            losses = model(inputs, samples, mode='loss')
            assert model.ramp_factor('soft_icl') == pytest.approx(
                iteration / 10)
        grads = {
            k: torch.autograd.grad(v, params, retain_graph=True,
                                   allow_unused=True)
            for k, v in losses.items()
        }
        return losses, grads

    full, full_grads = terms_and_grads(10)  # factor 1
    ramped, ramped_grads = terms_and_grads(3)  # factor 0.3
    assert set(full) >= set(RAMPED)
    for key in full:
        f = 0.3 if key in RAMPED else 1.
        torch.testing.assert_close(ramped[key], f * full[key], rtol=1e-12,
                                   atol=0)
        checked = 0
        for g_ramped, g_full in zip(ramped_grads[key], full_grads[key]):
            if g_full is None:
                assert g_ramped is None
                continue
            torch.testing.assert_close(g_ramped, f * g_full, rtol=1e-10,
                                       atol=1e-14)
            checked += int(g_full.abs().sum() > 0)
        assert checked > 0, key


def test_per_term_ramps_and_logged_factors():
    model = build(MCL_MEAN, loss_ramp=[
        dict(type='LossWeightRamp', shape='sigmoid', length=4,
             terms=('soft_vcl', 'soft_icl')),
        dict(type='LossWeightRamp', shape='linear', length=8,
             terms='kd_mean'),
    ]).float()
    expected = dict(soft_vcl=math.exp(-5 * .25), soft_icl=math.exp(-5 * .25),
                    kd_mean=2 / 8, vcl=1., icl=1.)
    wrapper = build_optim_wrapper(
        model, dict(optimizer=dict(type='SGD', lr=0.)))
    inputs, samples = batch()
    with train_progress(batch_idx=3, epoch=2, iteration=17):
        for term, factor in expected.items():
            assert model.ramp_factor(term) == pytest.approx(factor)
        log_vars = model.train_step(
            dict(inputs=list(inputs.float()), data_samples=samples), wrapper)
    assert {k: pytest.approx(float(v)) for k, v in log_vars.items()
            if k.startswith('ramp/')} == {
                f'ramp/{k}': pytest.approx(v) for k, v in expected.items()
                if k in ('soft_vcl', 'soft_icl', 'kd_mean')}
