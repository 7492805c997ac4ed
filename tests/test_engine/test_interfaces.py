"""Declared interfaces, loud failures: each caller that needs something of
the model raises naming the model's type, the method and itself when it is
missing; every method's distiller declares every interface; the meta
step's schedule and the loss-weight ramps follow the MessageHub, and
missing information raises naming the key and the hook that publishes
it."""
import copy
import math
import uuid
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import RuntimeInfoHook
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmmcl.engine import (CohortDistributedDataParallel,
                          CohortOptimWrapperConstructor, prepare_distributed)
from mmmcl.engine.hooks import (CohortPlotHook, CohortProgressHook,
                                CohortSanityHook, ContrastIndexHook)
from mmmcl.models.distillers import (BankRowsModel, DistributedStepModel,
                                     MatchingWeightsModel, MetaModuleModel,
                                     NumClassesModel, missing_members)
from mmmcl.models.losses import LossWeightRamp
from mmmcl.registry import MODELS
from mmmcl.testing import train_progress
# tiny L-MCL cohorts (in-batch negatives, banks) in float64, their batch
from test_ddp import CONFIGS, NUM_CLASSES, global_batch  # noqa: I100
from test_ddp import build as build_cohort  # noqa: I100

RESNET8 = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=NUM_CLASSES,
        in_channels=64))
ZOO = dict(
    type='CohortDistiller',
    num_classes=NUM_CLASSES,
    peers=dict(type='IndependentPeers', members=[RESNET8, RESNET8]),
    teachers=dict(mean=dict(target=dict(type='PeerMeanTarget'))),
    distill=[dict(teacher='mean')],
    loss_ramp=dict(type='LossWeightRamp', length=80))
MODEL_INTERFACES = (MetaModuleModel, MatchingWeightsModel, BankRowsModel,
                    NumClassesModel, DistributedStepModel)


@pytest.fixture(autouse=True)
def mmmcl_scope():
    with DefaultScope.overwrite_default_scope('mmmcl'):
        yield


@pytest.fixture
def fresh_hub() -> MessageHub:
    """A new current MessageHub: nothing published."""
    return MessageHub.get_instance(f'interfaces_{uuid.uuid4().hex[:8]}')


def build(cfg: dict) -> nn.Module:
    """A classifier or zoo model, initialised, in train mode."""
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def zoo_data(size: int = 8) -> dict:
    """A batch of uint8 images, as the dataloader gives it."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (size, 3, 16, 16), dtype=torch.uint8,
                           generator=gen)
    samples = [
        DataSample().set_gt_label(i // 2 % NUM_CLASSES) for i in range(size)
    ]
    return dict(inputs=list(images), data_samples=samples)


def lmcl_step(model: nn.Module) -> dict:
    """One train step of an L-MCL cohort, with SGD for theta and phi."""
    sgd = dict(optimizer=dict(type='SGD', lr=0.05))
    wrappers = build_optim_wrapper(
        model,
        dict(constructor='CohortOptimWrapperConstructor', cohort=sgd,
             meta=sgd))
    inputs, samples = global_batch()
    return model.train_step(dict(inputs=inputs, data_samples=samples),
                            wrappers)


# ------------------------------------------------------------ declared
@pytest.mark.parametrize('name', ['inbatch', 'bank', 'zoo'])
def test_every_method_declares_every_model_interface(name):
    model = build(ZOO) if name == 'zoo' else build_cohort(name)
    for interface in MODEL_INTERFACES:
        assert missing_members(model, interface) == [], interface
    assert issubclass(type(model), DistributedStepModel)


def test_the_zoo_answers_none():
    model = build(ZOO)
    assert model.meta_module() is None
    assert model.mean_matching_weights() is None
    assert model.bank_rows() is None
    assert model.ddp_ignored_names() == []


def test_the_cohort_names_what_ddp_ignores():
    """The meta-network's parameters and the banks, by their names in the
    cohort; in-batch negatives hold no buffer."""
    model = build_cohort('bank')
    assert model.meta_module() is model.meta_net
    assert model.bank_rows() == 20
    phi = {id(p) for p in model.meta_net.parameters()}
    banks = {id(b) for b in model.terms.contrast.contrast_loss.banks}
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    ignored = model.ddp_ignored_names()
    assert {id(tensors[n]) for n in ignored} == phi | banks
    assert len(ignored) == len(phi) + len(banks)
    inbatch = build_cohort('inbatch')
    assert inbatch.bank_rows() is None
    assert len(inbatch.ddp_ignored_names()) == len(phi)


# ---------------------------------------------------- loud failures
def error(call) -> str:
    with pytest.raises(TypeError) as e:
        call()
    return str(e.value)


def fake_runner(model) -> SimpleNamespace:
    return SimpleNamespace(
        model=model,
        message_hub=MessageHub.get_current_instance(),
        train_dataloader=SimpleNamespace(dataset=list(range(20))),
        epoch=1,
        iter=1)


@pytest.mark.parametrize('caller, missing, call', [
    ('CohortOptimWrapperConstructor', '`meta_module()`',
     lambda model: CohortOptimWrapperConstructor(
         dict(cohort=dict(optimizer=dict(type='SGD', lr=0.1))))(model)),
    ('CohortDistributedDataParallel',
     '`ddp_ignored_names()`, `optim_wrappers()`, '
     '`train_step(..., run_forward)`',
     lambda model: CohortDistributedDataParallel(model)),
    ('CohortPlotHook', '`mean_matching_weights()`',
     lambda model: CohortPlotHook().before_train(fake_runner(model))),
    ('CohortPlotHook', '`mean_matching_weights()`',
     lambda model: CohortPlotHook().after_train(fake_runner(model))),
    ('ContrastIndexHook', '`bank_rows()`',
     lambda model: ContrastIndexHook().before_train(fake_runner(model))),
    ('CohortSanityHook', '`num_classes`',
     lambda model: CohortSanityHook().after_val_epoch(
         fake_runner(model), {'member0/accuracy/top1': 0.})),
], ids=['optim_constructor', 'ddp_wrapper', 'plot_hook_before_train',
        'plot_hook_plot', 'contrast_index_hook', 'sanity_hook'])
def test_a_plain_classifier_is_refused(caller, missing, call):
    """mmpretrain's ImageClassifier has none of the interfaces: each caller
    raises naming itself, the type, what it lacks and a fix."""
    message = error(lambda: call(build(RESNET8)))
    assert message.startswith(f'{caller} needs ')
    assert f'ImageClassifier lacks {missing}:' in message
    assert 'implement it in ImageClassifier' in message


def test_the_fix_names_the_alternative():
    classifier = build(RESNET8)
    assert "type='MMDistributedDataParallel'" in error(
        lambda: CohortDistributedDataParallel(classifier))
    assert '`optim_wrapper=dict(optimizer=...)`' in error(
        lambda: CohortOptimWrapperConstructor(dict(cohort=dict()))(
            classifier))


class _OwnStep(nn.Module):
    """Declares DistributedStepModel's methods, but its train step takes no
    ``run_forward``."""

    def ddp_ignored_names(self):
        return []

    def optim_wrappers(self, optim_wrapper):
        return optim_wrapper, None

    def train_step(self, data, optim_wrapper):
        return {}


def test_a_train_step_without_run_forward_is_refused():
    assert "_OwnStep lacks `train_step(..., run_forward)`" in error(
        lambda: CohortDistributedDataParallel(_OwnStep()))


class _Cohort(nn.Module):
    """Any child may be the meta-network: no name is agreed on."""

    def __init__(self, nested: bool = False) -> None:
        super().__init__()
        self.body = nn.Linear(2, 2)
        self.phi = nn.Sequential(nn.Linear(2, 1))
        self.nested = nested

    def meta_module(self) -> nn.Module:
        return self.phi[0] if self.nested else self.phi


def test_the_optimizer_constructor_asks_the_model():
    sgd = dict(optimizer=dict(type='SGD', lr=0.1))
    constructor = CohortOptimWrapperConstructor(dict(cohort=sgd, meta=sgd))
    model = _Cohort()
    wrappers = constructor(model)

    def params(name):
        return {id(p) for group in wrappers[name].param_groups
                for p in group['params']}

    assert params('cohort') == {id(p) for p in model.body.parameters()}
    assert params('meta') == {id(p) for p in model.phi.parameters()}
    with pytest.raises(ValueError, match=r'_Cohort.meta_module\(\) must '
                       'return a direct child.*got a Linear'):
        constructor(_Cohort(nested=True))
    with pytest.raises(ValueError, match='optim_wrapper.meta'):
        CohortOptimWrapperConstructor(dict(cohort=sgd))(model)


def test_a_contrast_loss_must_declare_its_targets():

    class Undeclared(nn.Module):

        def forward(self, embeddings, target, weights):
            return {}

    cfg = copy.deepcopy(CONFIGS['inbatch'])
    cfg['terms']['contrast']['contrast_loss'] = dict(type=Undeclared)
    with pytest.raises(TypeError, match='MutualContrastTerm .`contrast_'
                       'loss`. needs ContrastLoss, but Undeclared lacks '
                       '`uses_banks`'):
        MODELS.build(cfg)


def test_the_distiller_asks_its_parts():
    """A peers module or a term lacking a member of its interface fails at
    build time, naming the field, the part's type and what it lacks."""
    from mmmcl.models import IndependentPeers, MutualContrastTerm

    class NoStages(IndependentPeers):
        stage_channels = None

    class Unnamed(MutualContrastTerm):
        names = property()  # AttributeError: absent

    cfg = copy.deepcopy(CONFIGS['inbatch'])
    cfg['peers']['type'] = NoStages
    with pytest.raises(TypeError, match=r'CohortDistiller .`model.peers`. '
                       r'needs CohortPeers, but NoStages lacks '
                       r'`stage_channels\(\)`'):
        MODELS.build(cfg)
    cfg = copy.deepcopy(CONFIGS['inbatch'])
    cfg['terms']['contrast']['type'] = Unnamed
    with pytest.raises(TypeError, match=r'`model.terms.contrast`. needs '
                       'CohortTerm, but Unnamed lacks `names`'):
        MODELS.build(cfg)


def test_only_a_model_that_steps_itself_gets_the_cohort_wrapper():
    for model, wrapper in ((CONFIGS['inbatch'],
                            'CohortDistributedDataParallel'),
                           (ZOO, 'CohortDistributedDataParallel'),
                           (RESNET8, 'MMDistributedDataParallel')):
        cfg = Config(dict(launcher='slurm', model=model))
        prepare_distributed(cfg)
        assert cfg.model_wrapper_cfg.type.endswith(wrapper)


# ----------------------------------------- progress from the MessageHub
def test_the_meta_step_follows_the_published_batch_index(fresh_hub):
    model = build_cohort('inbatch')
    runner = SimpleNamespace(message_hub=fresh_hub)
    hook = CohortProgressHook()
    hook.before_train_iter(runner, batch_idx=3)  # interval 2: not due
    assert fresh_hub.get_info('batch_idx') == 3
    assert 'meta/lr' not in lmcl_step(model)
    hook.before_train_iter(runner, batch_idx=4)
    assert 'meta/lr' in lmcl_step(model)


def test_the_ramps_follow_runtime_info_hook(fresh_hub):
    """Epoch and global iteration as MMEngine's RuntimeInfoHook publishes
    them; the zoo's loss is scaled at the epoch's factor."""
    runner = SimpleNamespace(
        message_hub=fresh_hub, epoch=40, iter=25,
        optim_wrapper=SimpleNamespace(get_lr=lambda: dict(lr=[0.1])))
    hook = RuntimeInfoHook()
    hook.before_train_epoch(runner)
    hook.before_train_iter(runner, batch_idx=0)
    by_epoch = LossWeightRamp('sigmoid', length=80)
    by_iter = LossWeightRamp('linear', length=50, by_epoch=False)
    assert by_epoch.factor == pytest.approx(math.exp(-5 * .25))
    assert by_iter.factor == pytest.approx(.5)

    model = build(ZOO)
    assert model.ramp_factor('kd_mean') == by_epoch.factor
    sgd = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.)))
    log_vars = model.train_step(zoo_data(), sgd)
    assert float(log_vars['ramp/kd_mean']) == pytest.approx(by_epoch.factor)
    runner.epoch = 80
    hook.before_train_epoch(runner)
    assert float(model.train_step(zoo_data(), sgd)['ramp/kd_mean']) == 1.


@pytest.mark.parametrize('key, hook, call', [
    ("'epoch'", 'RuntimeInfoHook',
     lambda: LossWeightRamp('sigmoid', length=80).factor),
    ("'iter'", 'RuntimeInfoHook',
     lambda: LossWeightRamp('linear', by_epoch=False).factor),
    ("'batch_idx'", "default_hooks.cohort_progress=dict(type='Cohort"
     "ProgressHook')", lambda: lmcl_step(build_cohort('inbatch'))),
], ids=['epoch', 'iter', 'batch_idx'])
def test_missing_progress_names_the_key_and_the_hook(fresh_hub, key, hook,
                                                     call):
    with pytest.raises(RuntimeError) as e:
        call()
    assert f'{key} from the MessageHub' in str(e.value)
    assert hook in str(e.value)
    assert 'mmmcl.testing.train_progress' in str(e.value)


def test_a_ramp_of_length_zero_needs_no_progress(fresh_hub):
    assert LossWeightRamp(length=0).factor == 1.


def test_train_progress_restores_the_hub(fresh_hub):
    fresh_hub.update_info('epoch', 7)
    with train_progress(batch_idx=2, epoch=3):
        assert [fresh_hub.get_info(k) for k in ('batch_idx', 'epoch',
                                                'iter')] == [2, 3, 2]
    assert fresh_hub.get_info('epoch') == 7
    assert fresh_hub.get_info('batch_idx') is None
