"""One L-MCL step with memory banks (the ImageNet recipe) against the
authors' code, float64: the normal update (every term read from the banks,
the reference's VCL quirk ``vcl_bank='anchor'``, logit KD, the bank update)
and the meta step (its virtual steps write the banks) of a cohort through
``train_step`` beside
:class:`mmmcl.testing.lmcl_bank_reference.ReferenceLMCLBank`, a literal
transcription of ``main_layer_mcl_imagenet_meta.py`` and
``imagenet_sup_layer_mcl_meta_loss.py``.

Mutation check: each of these one-line bugs was made in turn and made
the test named fail:
``MemoryBankContrastLoss.update_banks`` pairing the banks with the
embeddings in reverse (``zip(self.banks, final_embeddings[::-1])``) and
``CohortDistiller.loss`` updating the banks with the first stage's
embeddings (``e[0]`` for ``e[-1]``): ``test_normal_step_with_banks_equals_
the_reference``; ``MetaStep`` not carrying a virtual step's buffers to the
next (``state = step_state`` dropped): ``[2]`` of
``test_meta_step_with_banks_equals_the_reference``; ``meta_problem``'s
objective computing the carried write from the model's banks instead of
the carried ones: its ``[3]``.
"""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.registry import MODELS
from mmmcl.testing import train_progress
from mmmcl.testing.lmcl_bank_reference import ReferenceLMCLBank
from test_cohort_distiller import optim_wrappers  # noqa: I100
from test_lmcl_reference_step import (NUM_CLASSES,  # noqa: I100
                                      REFERENCE_SWITCHES, assert_all_close,
                                      lmcl_cohort, momentum_buffers)

NUM_SAMPLES, NEGATIVES, B = 24, 6, 8
LR, WD = 0.1, 1e-4
@pytest.fixture(autouse=True)
def mmmcl_scope():
    with DefaultScope.overwrite_default_scope('mmmcl'):
        yield


def build(vcl_bank: str, **meta):
    torch.manual_seed(0)
    model = MODELS.build(
        lmcl_cohort(
            aux_depth='one_block',
            contrast_loss=dict(
                type='MemoryBankContrastLoss', num_samples=NUM_SAMPLES,
                feat_dim=8, num_members=2, tau=0.07, kd_temperature=3.0,
                momentum=0.5, vcl_bank=vcl_bank),
            loss_weights=dict(vcl=0.01, icl=0.01),
            meta=dict(
                dict(interval=500, virtual_steps=2, proj_dim=8), **meta)))
    model.init_weights()
    return model.double().train()


def batch():
    """B images of dataset indices 0..B-1, each with its bank rows
    [self, one same-class positive, NEGATIVES other-class rows]."""
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(B, 3, 16, 16, generator=gen, dtype=torch.float64)
    labels = torch.arange(NUM_SAMPLES) % NUM_CLASSES
    samples, rows = [], []
    for i in range(B):
        same = (labels == labels[i]).nonzero().flatten()
        other = (labels != labels[i]).nonzero().flatten()
        pos = same[same != i][torch.randint(len(same) - 1, (1, ),
                                            generator=gen)]
        neg = other[torch.randint(len(other), (NEGATIVES, ), generator=gen)]
        row = torch.cat([torch.tensor([i]), pos, neg])
        rows.append(row)
        sample = DataSample().set_gt_label(int(labels[i]))
        sample.set_field(row, 'contrast_idx', field_type='data')
        samples.append(sample)
    return inputs, labels[:B], samples, torch.stack(rows)


def test_normal_step_with_banks_equals_the_reference():
    model = build('anchor')
    reference_model = copy.deepcopy(model)
    optim = optim_wrappers(model, lr=LR, weight_decay=WD)
    inputs, labels, samples, rows = batch()
    with train_progress(batch_idx=1):  # the meta step is not due
        log_vars = model.train_step(
            dict(inputs=inputs, data_samples=samples), optim)
    assert 'meta/lr' not in log_vars and 'contrast.loss_vcl' in log_vars
    reference = ReferenceLMCLBank(reference_model, lr=LR, weight_decay=WD,
                                  neg_k=NEGATIVES)
    reference.train_batch(inputs, labels, rows[:, :2], rows[:, 2:])

    ref_params = dict(reference_model.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, ref_params[name], rtol=1e-10,
                                   atol=1e-12, msg=name)
    for bank, ref_bank, before in zip(
            model.terms.contrast.contrast_loss.banks,
            reference_model.terms.contrast.contrast_loss.banks,
            build('anchor').terms.contrast.contrast_loss.banks):
        torch.testing.assert_close(bank, ref_bank, rtol=1e-10, atol=1e-12)
        assert not torch.equal(bank[:B], before[:B])  # the batch's rows
        assert torch.equal(bank[B:], before[B:])
    name_of = {id(p): n for n, p in model.named_parameters()}
    ref_name_of = {id(p): n for n, p in reference_model.named_parameters()}
    state = {name_of[id(p)]: s['momentum_buffer']
             for p, s in optim['cohort'].optimizer.state.items()}
    ref_state = {ref_name_of[id(p)]: s['momentum_buffer']
                 for p, s in reference.optimizer.state.items()}
    assert state.keys() == ref_state.keys() and state
    for name, buf in state.items():
        torch.testing.assert_close(buf, ref_state[name], rtol=1e-10,
                                   atol=1e-12, msg=name)


def test_own_bank_departs_from_the_reference():
    """``vcl_bank='own'`` (the paper's meaning) differs from the reference's
    anchor-bank VCL."""
    model = build('own')
    reference_model = copy.deepcopy(model)
    optim = optim_wrappers(model, lr=LR, weight_decay=WD)
    inputs, labels, samples, rows = batch()
    with train_progress(batch_idx=1):
        model.train_step(dict(inputs=inputs, data_samples=samples), optim)
    ReferenceLMCLBank(reference_model, lr=LR, weight_decay=WD,
                      neg_k=NEGATIVES).train_batch(inputs, labels,
                                                   rows[:, :2], rows[:, 2:])
    gap = max((p - q).abs().max().item() for p, q in zip(
        model.parameters(), reference_model.parameters()))
    assert gap > 1e-9


def run_meta_step(times: int, virtual_buffers: str):
    """Both steps with the meta step due (``batch_idx`` 0), the reference's
    adjoint and replay switches on."""
    model = build('anchor', virtual_steps=times,
                  virtual_buffers=virtual_buffers, **REFERENCE_SWITCHES)
    reference_model = copy.deepcopy(model)
    optim = optim_wrappers(model, lr=LR, weight_decay=WD)
    inputs, labels, samples, rows = batch()
    with train_progress(batch_idx=0):
        log_vars = model.train_step(
            dict(inputs=inputs, data_samples=samples), optim)
    assert 'meta/lr' in log_vars
    reference = ReferenceLMCLBank(reference_model, lr=LR, weight_decay=WD,
                                  neg_k=NEGATIVES, times=times)
    reference.train_batch(inputs, labels, rows[:, :2], rows[:, 2:],
                          meta=True)
    return model, optim, reference_model, reference, inputs


@pytest.mark.parametrize('times', [1, 2, 3])
def test_meta_step_with_banks_equals_the_reference(times):
    """The whole ImageNet step (normal update, bank update, meta step) with
    the reference's switches, ``virtual_buffers='carried'`` included: every
    parameter (phi too), BN statistic, bank row and optimizer state equals
    the authors' step to 1e-10. The reference's contrastive loss writes the
    banks in every virtual step (the next one reads the batch's rows as
    written) and in the replay of step 0, whose state ``rollback=True``
    keeps."""
    model, optim, reference_model, reference, _ = run_meta_step(
        times, 'carried')
    assert_all_close(dict(model.named_parameters()),
                     dict(reference_model.named_parameters()))
    assert_all_close(dict(model.named_buffers()),
                     dict(reference_model.named_buffers()))
    for ours, theirs in [(optim['cohort'], reference.optimizer),
                         (optim['meta'], reference.weight_optimizer)]:
        state = momentum_buffers(ours.optimizer, model)
        assert state
        assert_all_close(state, momentum_buffers(theirs, reference_model))


def test_fresh_virtual_buffers_depart_from_the_reference():
    """``virtual_buffers='fresh'`` (the default): no virtual step writes
    the banks, so the second one reads the batch's rows as the normal
    update left them. theta, the aggregators and the main optimizer still
    equal the reference; phi and the banks (the replay's write) do not."""
    model, optim, reference_model, reference, inputs = run_meta_step(
        2, 'fresh')
    ref_params = dict(reference_model.named_parameters())
    phi = {n for n in ref_params if n.startswith('meta_net.')}
    assert_all_close(
        {n: p for n, p in model.named_parameters() if n not in phi},
        {n: p for n, p in ref_params.items() if n not in phi})
    gap = max((p - ref_params[n]).abs().max().item()
              for n, p in model.named_parameters() if n in phi)
    assert gap > 1e-9
    # the reference's banks: one more update at theta_0 (the replay's)
    written = copy.deepcopy(model)
    out = written(inputs, mode='tensor')
    banks = written.terms.contrast.contrast_loss
    banks.update_banks([e[-1] for e in out.embeddings['contrast']],
                       torch.arange(B))
    assert_all_close(
        dict(banks.named_buffers()),
        dict(reference_model.terms.contrast.contrast_loss.named_buffers()))
