"""One whole L-MCL training step against the authors' code (float64).

``CohortDistiller.train_step`` (normal update with the main optimizer's
momentum, bank-free in-batch terms, aggregator, logit KD, then the meta step
with its virtual steps, reverse replay and phi's update) on a copy of one
cohort, beside :class:`mmmcl.testing.lmcl_reference.ReferenceLMCL` (a
literal transcription of ``main_layer_mcl_cifar_meta.py`` and ``MetaSGD``).

Mutation check: each of these one-line bugs was made in turn and made
``test_whole_step_equals_the_reference`` fail:
1. ``meta_step.py``: ``adj_buf = -lr * adj_theta + mu * prev_adj_buf``
   without ``mu *`` (the meta-network's parameters differ);
2. ``cohort_distiller.py`` ``ce_losses``: skip the first stage's CE
   (``enumerate(stages[1:])``).
"""
import copy
from typing import Optional

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.registry import MODELS
from mmmcl.testing import train_progress
from mmmcl.testing.lmcl_reference import ReferenceLMCL
from test_cohort_distiller import optim_wrappers  # noqa: I100

NUM_CLASSES = 4
LR, WD = 0.1, 5e-4
RESNET8 = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(type='mmpretrain.LinearClsHead', in_channels=64))
REFERENCE_SWITCHES = dict(momentum_adjoint='reference', replay_bn='reference')


@pytest.fixture(autouse=True)
def mmmcl_scope():
    with DefaultScope.overwrite_default_scope('mmmcl'):
        yield


def lmcl_cohort(aux_depth: str = 'full',
                contrast_loss: dict = dict(type='InBatchContrastLoss',
                                           tau=0.1),
                loss_weights: Optional[dict] = None,
                **overrides) -> dict:
    """A float64-ready L-MCL pair of ResNet-8s (inputs as they are)."""
    return dict(
        dict(
            type='CohortDistiller',
            peers=dict(
                type='IndependentPeers',
                members=[RESNET8, RESNET8],
                aux_depth=aux_depth),
            num_classes=NUM_CLASSES,
            # float64 inputs as they are (no uint8 normalisation)
            data_preprocessor=dict(type='mmengine.BaseDataPreprocessor'),
            teachers=dict(
                aggregator=dict(
                    target=dict(type='StageAggregatorTarget'),
                    ce_weight=1.0)),
            distill=[dict(teacher='aggregator', mimic='all')],
            terms=dict(
                contrast=dict(
                    type='MutualContrastTerm',
                    embed_dim=8,
                    contrast_loss=contrast_loss,
                    loss_weights=loss_weights)),
            kd_loss=dict(type='LogitKDLoss', temperature=3.0)), **overrides)


def build(switches: dict, head_init: str = 'reference'):
    torch.manual_seed(0)
    model = MODELS.build(
        lmcl_cohort(
            meta=dict(interval=50, virtual_steps=2, proj_dim=8, **switches),
            head_init=head_init))
    model.init_weights()
    return model.double().train()


def batch(size=8):
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(size, 3, 16, 16, generator=gen, dtype=torch.float64)
    labels = torch.arange(size) // 2 % NUM_CLASSES  # two images a class
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    return inputs, labels, samples


def run_both(switches: dict):
    """The mmmcl step and the reference's on copies of one cohort."""
    model = build(switches)
    reference_model = copy.deepcopy(model)
    optim = optim_wrappers(model, lr=LR, weight_decay=WD)
    inputs, labels, samples = batch()
    with train_progress(batch_idx=0):  # the meta step is due
        model.train_step(dict(inputs=inputs, data_samples=samples), optim)
    reference = ReferenceLMCL(reference_model, lr=LR, weight_decay=WD,
                              times=2, meta_freq=50)
    reference.train_batch(0, inputs, labels)
    return model, optim, reference_model, reference


def momentum_buffers(optimizer, model):
    name_of = {id(p): n for n, p in model.named_parameters()}
    return {
        name_of[id(p)]: optimizer.state[p]['momentum_buffer']
        for group in optimizer.param_groups for p in group['params']
        if p in optimizer.state
    }


def assert_all_close(actual: dict, expected: dict):
    assert actual.keys() == expected.keys()
    for name, value in actual.items():
        torch.testing.assert_close(
            value.double(), expected[name].double(), rtol=1e-10, atol=1e-12,
            msg=name)


def test_whole_step_equals_the_reference():
    """With the reference's switches every parameter, buffer and optimizer
    state after one step equals the authors' code to 1e-10."""
    model, optim, reference_model, reference = run_both(REFERENCE_SWITCHES)
    assert_all_close(dict(model.named_parameters()),
                     dict(reference_model.named_parameters()))
    assert_all_close(dict(model.named_buffers()),
                     dict(reference_model.named_buffers()))
    assert_all_close(
        momentum_buffers(optim['cohort'].optimizer, model),
        momentum_buffers(reference.optimizer, reference_model))
    meta_state = momentum_buffers(optim['meta'].optimizer, model)
    assert meta_state and all(n.startswith('meta_net.') for n in meta_state)
    assert_all_close(
        meta_state, momentum_buffers(reference.weight_optimizer,
                                     reference_model))


def test_exact_switches_depart_only_where_switched():
    """The defaults (exact adjoint, no BN update in the replay): theta, the
    aggregators and the main optimizer's state still equal the reference;
    phi differs (the adjoint), and so do the BN statistics (the replay's
    extra update), which are those of the normal step alone."""
    model, optim, reference_model, reference = run_both({})
    phi = {n: p for n, p in model.named_parameters()
           if n.startswith('meta_net.')}
    rest = {n: p for n, p in model.named_parameters() if n not in phi}
    ref_params = dict(reference_model.named_parameters())
    assert_all_close(rest, {n: ref_params[n] for n in rest})
    assert_all_close(
        momentum_buffers(optim['cohort'].optimizer, model),
        momentum_buffers(reference.optimizer, reference_model))
    gap = torch.cat([(p - ref_params[n]).reshape(-1) for n, p in phi.items()])
    assert gap.abs().max() > 1e-8
    bn = model.peers.members[0].backbone.stem[1]
    ref_bn = reference_model.peers.members[0].backbone.stem[1]
    assert int(bn.num_batches_tracked) == 1
    assert int(ref_bn.num_batches_tracked) == 2
    assert not torch.allclose(bn.running_var, ref_bn.running_var)
