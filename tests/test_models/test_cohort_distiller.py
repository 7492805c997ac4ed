import copy
import uuid

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.models.distillers.meta_problem import cohort_meta_problem
from mmmcl.models.utils import cohort_blocks
from mmmcl.registry import MODELS
from mmmcl.testing import train_progress

NUM_CLASSES = 4


def member(backbone, width):
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=backbone,
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', in_channels=width))


RESNET8 = member(dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)), 64)
WRN10 = member(
    dict(type='CifarWideResNet', depth=10, widen_factor=1,
         out_indices=(0, 1, 2)), 64)
CONTRAST = dict(
    type='MutualContrastTerm',
    embed_dim=8,
    contrast_loss=dict(type='InBatchContrastLoss', tau=0.1))
METHODS = dict(
    lmcl=dict(
        aux_depth='full',
        teachers=dict(
            aggregator=dict(
                target=dict(type='StageAggregatorTarget'), ce_weight=1.)),
        distill=[dict(teacher='aggregator', mimic='all')],
        terms=dict(contrast=CONTRAST),
        meta=dict(interval=2, virtual_steps=2, proj_dim=8)),
    mcl=dict(terms=dict(contrast=CONTRAST)),
    dml=dict(
        teachers=dict(mutual=dict(target=dict(type='OtherPeersTarget'))),
        distill=[dict(teacher='mutual')]),
    independent=dict())


@pytest.fixture(autouse=True)
def mmmcl_scope():
    with DefaultScope.overwrite_default_scope('mmmcl'):
        yield


def build(method='lmcl', members=(RESNET8, WRN10), aux_depth=None,
          contrast=None, **kwargs):
    """The cohort of ``method`` (:data:`METHODS`), as its config base
    builds it; ``contrast`` updates its contrast term."""
    cfg = copy.deepcopy(METHODS[method])
    if contrast is not None:
        cfg['terms']['contrast'].update(contrast)
    peers = dict(type='IndependentPeers', members=list(members))
    method_depth = cfg.pop('aux_depth', None)
    aux_depth = aux_depth or method_depth
    if aux_depth is not None:
        peers['aux_depth'] = aux_depth
    cfg.update(type='CohortDistiller', num_classes=NUM_CLASSES, peers=peers)
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def batch(size=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, 3, 16, 16, generator=gen)
    samples = [
        DataSample().set_gt_label(i // 2 % NUM_CLASSES) for i in range(size)
    ]
    return inputs, samples


def test_lmcl_parts():
    model = build()
    assert model.peers.stage_channels() == [[64] * 3] * 2
    assert [len(b) for b in model.peers.branches] == [2, 2]
    # the branch after stage 1 copies stages 2 and 3 (+ post), fresh weights
    branch = model.peers.branches[0][0]
    stage2 = model.peers.members[0].backbone.stages[1]
    assert not torch.equal(branch.layers[0][0].conv1.weight,
                           stage2[0].conv1.weight)
    assert model.meta_net.num_blocks == len(cohort_blocks([3, 3])) == 18
    inputs, samples = batch()
    losses = model(inputs, samples, mode='loss')
    expected = {
        f'peer{m}{s}.loss_ce'
        for m in range(2) for s in ('.s1', '.s2', '')
    } | {f'aggregator.peer{m}.loss_ce' for m in range(2)
         } | {f'peer{m}.loss_kd_aggregator' for m in range(2)
              } | {f'contrast.loss_{k}'
                   for k in ('vcl', 'soft_vcl', 'icl', 'soft_icl')}
    assert set(losses) == expected
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())


@pytest.mark.parametrize('method, keys', [
    ('mcl', {'contrast.loss_vcl', 'peer0.loss_ce'}),
    ('dml', {'peer0.loss_kd_mutual', 'peer1.loss_ce'}),
    ('independent', {'peer0.loss_ce', 'peer1.loss_ce'}),
])
def test_methods_are_configurations(method, keys):
    model = build(method)
    assert model.peers.stage_channels() == [[64], [64]]
    assert len(model.peers.branches[0]) == 0
    losses = model(*batch(), mode='loss')
    assert keys <= set(losses)
    if method == 'independent':
        assert set(losses) == keys


def test_logit_kd_matches_formula():
    model = build('dml', members=(RESNET8, RESNET8, RESNET8))
    inputs, samples = batch()
    out = model(inputs, mode='tensor')
    losses = model(inputs, samples, mode='loss')
    finals = out.logits
    t = model.distillation.kd_loss.temperature
    for m in range(3):
        expected = sum(
            F.kl_div(
                F.log_softmax(finals[m] / t, 1),
                F.softmax(finals[n] / t, 1),
                reduction='batchmean') * t**2 for n in range(3) if n != m) / 2
        torch.testing.assert_close(losses[f'peer{m}.loss_kd_mutual'],
                                   expected)


def test_predict_runs_only_the_members():
    model = build().eval()
    for branches in model.peers.branches:
        for branch in branches:
            branch.forward = None  # would fail if called
    inputs, _ = batch()
    with torch.no_grad():
        samples = model(inputs, mode='predict')
        scores = [
            F.softmax(m(inputs, mode='tensor'), dim=1)
            for m in model.peers.members
        ]
    member_scores = torch.stack([s.member_scores for s in samples])
    torch.testing.assert_close(member_scores, torch.stack(scores, 1))
    torch.testing.assert_close(
        torch.stack([s.pred_score for s in samples]),
        (scores[0] + scores[1]) / 2)


def test_bad_input():
    with pytest.raises(ValueError, match=r'model.peers.members.*at least 2'):
        build(members=(RESNET8, ))
    other = copy.deepcopy(WRN10)
    other['head']['num_classes'] = 7
    with pytest.raises(ValueError,
                       match=r'members\[1\].head.num_classes. is 7'):
        build(members=(RESNET8, other))
    lenet = member(dict(type='mmpretrain.LeNet5'), 84)
    with pytest.raises(TypeError, match=r'members\[1\].backbone.*LeNet5'):
        build(members=(RESNET8, lenet))
    last_missing = copy.deepcopy(RESNET8)
    last_missing['backbone']['out_indices'] = (0, 1)
    with pytest.raises(ValueError, match=r'out_indices.*\[0, 1, 2\]'):
        build(members=(last_missing, RESNET8))
    with pytest.raises(ValueError, match=r'distill\[0\].mimic'):
        build(distill=[dict(teacher='aggregator', mimic='teacher')])
    with pytest.raises(ValueError, match='aux_depth'):
        build(aux_depth='half')
    with pytest.raises(ValueError, match='model.peers.aux_depth'):
        build('mcl', teachers=METHODS['lmcl']['teachers'])
    with pytest.raises(ValueError, match='model.meta.*model.terms'):
        build('independent', meta=dict(interval=2))


def optim_wrappers(model, lr=0.05, weight_decay=1e-3):
    sgd = dict(
        type='SGD',
        lr=lr,
        momentum=0.9,
        nesterov=True,
        weight_decay=weight_decay)
    return build_optim_wrapper(
        model,
        dict(
            constructor='CohortOptimWrapperConstructor',
            cohort=dict(optimizer=sgd),
            meta=dict(optimizer=sgd)))


def test_meta_step_hypergradient_matches_finite_differences():
    """Exact with VCL and ICL; the soft terms stop the gradient of their
    targets, which the hypergradient (like the reference's) keeps constant,
    so they are switched off here. The reference's momentum adjoint
    (``momentum_adjoint='reference'``) departs from it."""
    torch.manual_seed(0)
    model = build(contrast=dict(
        loss_weights=dict(soft_vcl=0., soft_icl=0.))).double()
    wrappers = optim_wrappers(model, lr=0.01)
    inputs, samples = batch()
    inputs = inputs.double()
    problem = cohort_meta_problem(model, inputs, samples,
                                  wrappers['cohort'])
    phi = problem.phi
    hypergrad = model.meta_step.hypergradient(problem).grads

    def outer_at(delta, eps):
        with torch.no_grad():
            for p, d in zip(phi, delta):
                p.add_(eps * d)
        value = model.meta_step.hypergradient(problem).outer_loss.item()
        with torch.no_grad():
            for p, d in zip(phi, delta):
                p.sub_(eps * d)
        return value

    gen = torch.Generator().manual_seed(1)
    directions = [[torch.randn(p.shape, generator=gen, dtype=p.dtype)
                   for p in phi]]
    for index in (0, 5):  # single coordinates of the first projection
        one_hot = [torch.zeros_like(p) for p in phi]
        one_hot[0].view(-1)[index] = 1.
        directions.append(one_hot)
    eps = 1e-7  # the unrolled loss is rough at larger scales
    for delta in directions:
        numeric = (outer_at(delta, eps) - outer_at(delta, -eps)) / (2 * eps)
        analytic = sum((g * d).sum() for g, d in zip(hypergrad, delta))
        assert analytic.item() == pytest.approx(numeric, rel=1e-4, abs=1e-8)
    assert any(g.abs().sum() > 0 for g in hypergrad)

    model.meta_step.momentum_adjoint = 'reference'
    departed = model.meta_step.hypergradient(problem).grads
    flat = torch.cat([g.reshape(-1) for g in hypergrad])
    flat_ref = torch.cat([g.reshape(-1) for g in departed])
    assert (flat - flat_ref).norm() > 1e-4 * flat.norm()


def test_meta_step_leaves_theta_and_optimizer_untouched():
    torch.manual_seed(0)
    model = build().train()
    wrappers = optim_wrappers(model)
    inputs, samples = batch()
    data = dict(inputs=list((inputs * 40 + 128).clamp(0, 255).byte()),
                data_samples=samples)
    with train_progress(batch_idx=1):  # normal step: the optimizer state
        model.train_step(data, wrappers)
    theta = {n: p.clone() for n, p in model.named_parameters()
             if not n.startswith('meta_net.')}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    opt_state = copy.deepcopy(wrappers['cohort'].optimizer.state_dict())
    phi = {n: p.clone() for n, p in model.meta_net.named_parameters()}

    prepared = model.data_preprocessor(data, True)
    stats = model.meta_update(prepared['inputs'], samples,
                              wrappers['cohort'], wrappers['meta'])
    for n, p in model.named_parameters():
        if n in theta:
            assert torch.equal(p, theta[n]), n
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), n
    after = wrappers['cohort'].optimizer.state_dict()
    for key, state in opt_state['state'].items():
        for name, value in state.items():
            assert torch.equal(after['state'][key][name], value)
    changed = [not torch.equal(p, phi[n])
               for n, p in model.meta_net.named_parameters()]
    assert any(changed)
    assert stats['meta/lr'].item() == pytest.approx(0.05)
    assert all(p.grad is None or not p.grad.any()
               for p in model.meta_net.parameters())


def test_train_step_runs_meta_step_on_schedule():
    model = build().train()
    wrappers = optim_wrappers(model)
    inputs, samples = batch()
    data = dict(inputs=list((inputs * 40 + 128).clamp(0, 255).byte()),
                data_samples=samples)
    # a new current MessageHub: nothing published
    MessageHub.get_instance(f'meta_schedule_{uuid.uuid4().hex[:8]}')
    with pytest.raises(RuntimeError, match='CohortProgressHook'):
        model.train_step(data, wrappers)
    with train_progress(batch_idx=3):  # interval 2: no meta step
        assert 'meta/lr' not in model.train_step(data, wrappers)
    with train_progress(batch_idx=4):
        assert 'meta/lr' in model.train_step(data, wrappers)


def test_memory_bank_cohort_updates_banks_after_the_step():
    """L-MCL with MemoryBankContrastLoss: the loss reads the banks of
    ``contrast_idx``, the normal step updates the rows of the batch with the
    final-stage embeddings it trained on, the meta step leaves them."""
    torch.manual_seed(0)
    model = build(contrast=dict(contrast_loss=dict(
        type='MemoryBankContrastLoss', num_samples=20, feat_dim=8,
        num_members=2, momentum=0.5))).train()
    contrast_loss = model.terms.contrast.contrast_loss
    wrappers = optim_wrappers(model)
    inputs, samples = batch()
    data = dict(inputs=list((inputs * 40 + 128).clamp(0, 255).byte()),
                data_samples=samples)
    with pytest.raises(ValueError, match='ContrastIndexDataset'):
        model.loss(inputs, samples)
    for i, sample in enumerate(samples):
        sample.set_field(torch.tensor([i, (i + 2) % 8, 10, 11, 12]),
                         'contrast_idx', field_type='data')
    banks = [b.clone() for b in contrast_loss.banks]
    with torch.no_grad():
        processed = model.data_preprocessor(dict(data), True)
        finals = [e[-1] for e in model(
            processed['inputs'], mode='tensor').embeddings['contrast']]
    with train_progress(batch_idx=0):  # the meta step runs too
        log_vars = model.train_step(data, wrappers)
    assert 'meta/lr' in log_vars and 'contrast.loss_vcl' in log_vars
    for bank, before, final in zip(contrast_loss.banks, banks, finals):
        expected = F.normalize(0.5 * before[:8] + 0.5 * final, dim=1)
        torch.testing.assert_close(bank[:8], expected)
        assert torch.equal(bank[8:], before[8:])


def test_head_init_switch():
    """``mmpretrain``: LinearClsHead's Normal(0, 0.01) and zero bias, the
    branches' PyTorch default; ``reference``: the members' classifiers with
    PyTorch's default (U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std 0.072 for 64
    inputs), the branches' biases at zero."""
    bound = 1 / 64**0.5
    torch.manual_seed(0)
    model = build(members=(RESNET8, RESNET8))
    for member, branches in zip(model.peers.members, model.peers.branches):
        assert member.head.fc.weight.std() < 0.015
        assert not member.head.fc.bias.any()
        assert all(branch.fc.bias.abs().max() > 0 for branch in branches)
    torch.manual_seed(0)
    model = build(members=(RESNET8, RESNET8), head_init='reference')
    for member, branches in zip(model.peers.members, model.peers.branches):
        fc = member.head.fc
        assert 0.06 < fc.weight.std() < 0.085
        assert fc.weight.abs().max() <= bound
        assert 0 < fc.bias.abs().max() <= bound
        for branch in branches:
            assert not branch.fc.bias.any()
            assert 0.06 < branch.fc.weight.std() < 0.085
    with pytest.raises(ValueError, match='head_init'):
        build(head_init='kaiming')
