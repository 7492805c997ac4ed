"""``torch.compile`` of a cohort's ``train_step`` (MMEngine's
``compile=True``): the normal step compiles, the meta step runs eagerly
inside it; compiled and eager steps and runs agree for L-MCL, a
shared-trunk method (ONE) and a multi-view one (KDCL). Resume with compile
on: ``tests/test_engine/test_compile_resume.py``. Compiling takes a minute
or more a test on a CPU: slow set."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseDataPreprocessor
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from torch._dynamo.utils import counters

from mmmcl.registry import MODELS
from mmmcl.testing import train_progress
from test_cohort_distiller import batch, build, optim_wrappers  # noqa: I100

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def mmmcl_scope():
    with DefaultScope.overwrite_default_scope('mmmcl'):
        yield


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles as a new process would: Dynamo's caches of the
    code objects all models share (``_run_forward``, ``update_params``)
    would otherwise reach its recompile limit and leave later tests'
    steps eager, comparing eager with eager."""
    torch._dynamo.reset()
    counters.clear()
    yield
    assert counters['stats']['unique_graphs'] > 0, 'nothing was compiled'


def uint8_batch(seed=0):
    inputs, samples = batch(seed=seed)
    return dict(inputs=list((inputs * 40 + 128).clamp(0, 255).byte()),
                data_samples=samples)


def test_compiled_train_step_with_the_meta_step():
    """Step 1 (normal): the compiled step's losses and weights equal the
    eager step's to float32 tolerance. Step 2 (meta step due): phi's update
    equals the eager meta step from the weights the compiled normal step
    left (the unrolled loss is too rough in theta to compare phi across the
    two normal steps' rounding)."""
    torch.manual_seed(0)
    model = build().train()
    eager = copy.deepcopy(model)
    compiled_step = torch.compile(model.train_step)
    wrappers, eager_wrappers = optim_wrappers(model), optim_wrappers(eager)

    with train_progress(batch_idx=1):  # normal step only
        log = compiled_step(uint8_batch(), wrappers)
        eager_log = eager.train_step(uint8_batch(), eager_wrappers)
    for key, value in eager_log.items():
        torch.testing.assert_close(log[key], value, rtol=1e-4, atol=1e-5,
                                   msg=key)
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)

    before = copy.deepcopy(model)  # theta and phi before step 2
    with train_progress(batch_idx=0):  # the meta step is due
        log = compiled_step(uint8_batch(), wrappers)
    assert 'meta/hypergrad_norm' in log
    # the eager meta step from the weights the compiled normal step left
    reference = copy.deepcopy(before)
    with torch.no_grad():
        for (name, p), q in zip(reference.named_parameters(),
                                model.parameters()):
            if not name.startswith('meta_net.'):
                p.copy_(q)
        for b, c in zip(reference.buffers(), model.buffers()):
            b.copy_(c)
    reference_wrappers = optim_wrappers(reference)
    data = reference.data_preprocessor(uint8_batch(), True)
    reference.meta_update(data['inputs'], data['data_samples'],
                          reference_wrappers['cohort'],
                          reference_wrappers['meta'])
    moved = 0
    for (name, p), q, b in zip(model.meta_net.named_parameters(),
                               reference.meta_net.parameters(),
                               before.meta_net.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=name)
        moved += not torch.equal(p, b)
    assert moved


def test_compiled_normal_steps_do_not_recompile():
    """From the third step on, a compiled L-MCL normal step runs the graphs
    it has (the first has no momentum buffers, the first two differ in the
    matching-weight statistics). A value that changes at every step and is
    guarded by Dynamo (an int attribute counted in the forward, say) would
    recompile every step, then leave the step eager at Dynamo's recompile
    limit."""
    torch.manual_seed(0)
    model = build().train()
    compiled_step = torch.compile(model.train_step)
    wrappers = optim_wrappers(model)
    graphs = []
    for i in (1, 3, 5, 7):  # the meta step (interval 2) is not due
        with train_progress(batch_idx=i):
            compiled_step(uint8_batch(seed=i), wrappers)
        graphs.append(counters['stats']['unique_graphs'])
    assert graphs[0] > 0
    assert graphs[1] == graphs[2] == graphs[3], graphs


def float64_batch(seed=0):
    inputs, samples = batch(seed=seed)
    return dict(inputs=inputs.double(), data_samples=samples)


def halve_lr(*wrappers):
    """What a scheduler does between steps: the compiled step must not
    keep the lr it was traced with."""
    for wrapper in wrappers:
        for group in wrapper.param_groups:
            group['lr'] /= 2


def test_compiled_run_with_meta_steps_equals_eager_run():
    """Iterations 0 (meta step due), 1 (normal) and 2 (meta step due, lr
    halved) of a compiled and an eager run from the same weights: theta,
    phi and the BN statistics equal after each. Float64: the hypergradient
    is rough in theta (ReLU kinks, BN over 8 images), so the compiled
    normal step's float32 rounding (about 1e-6 in theta) moves phi's
    update by a few percent; in float64 the two runs agree to about 1e-13
    and a meta step that were skipped, ran on stale weights or a stale lr
    would show."""
    torch.manual_seed(0)
    model = build().double().train()
    model.data_preprocessor = BaseDataPreprocessor()  # float64 as given
    eager = copy.deepcopy(model)
    compiled_step = torch.compile(model.train_step)
    wrappers, eager_wrappers = optim_wrappers(model), optim_wrappers(eager)
    assert model.meta_step.interval == 2
    for i in range(3):
        phi = [p.clone() for p in model.meta_net.parameters()]
        if i == 2:
            halve_lr(*wrappers.values(), *eager_wrappers.values())
        with train_progress(batch_idx=i):
            log = compiled_step(float64_batch(i), wrappers)
            eager_log = eager.train_step(float64_batch(i), eager_wrappers)
        assert log.keys() == eager_log.keys()
        assert ('meta/hypergrad_norm' in log) == (i != 1)
        for key, value in eager_log.items():
            if key != 'meta/time':
                torch.testing.assert_close(log[key], value, rtol=1e-10,
                                           atol=1e-12, msg=key)
        for (name, p), q in zip(model.state_dict().items(),
                                eager.state_dict().values()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12,
                                       msg=f'iteration {i}: {name}')
        moved = [not torch.equal(p, p0)
                 for p, p0 in zip(model.meta_net.parameters(), phi)]
        assert all(moved) if i != 1 else not any(moved), i


OKD_CONFIGS = dict(
    one='configs/one/one_resnet20_1xb100-15e_mnist5k.py',
    kdcl='configs/kdcl/kdcl_resnet20x2_1xb100-15e_mnist5k.py')


def build_online_kd(method):
    """The MNIST-5k config's model with ResNet-8 peers, and its
    ``optim_wrapper``."""
    cfg = Config.fromfile(REPO / OKD_CONFIGS[method])
    peers = cfg.model.peers
    for classifier in peers.get('members') or [peers.classifier]:
        classifier.backbone.depth = 8
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.train(), cfg.optim_wrapper


def uint8_views(num_views, seed, size=4):
    """A batch as the dataloader gives it: B uint8 images, or (MultiView
    and ``default_collate``) V stacked (B, 3, H, W) views."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (max(num_views, 1), size, 3, 16, 16),
                           dtype=torch.uint8, generator=gen)
    samples = [DataSample().set_gt_label(i % 2) for i in range(size)]
    inputs = list(images) if num_views else list(images[0])
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('method, num_views', [('one', 0), ('kdcl', 2)])
def test_compiled_online_kd_steps_equal_eager(method, num_views):
    """Two steps of a shared-trunk method (ONE: BranchedClassifier, gated
    ensemble) and of a multi-view one (KDCL: a view per peer), compiled and
    eager, the ramp and the lr moving between them: the logged losses, the
    parameters and the BN statistics equal to float32 tolerance."""
    model, optim_cfg = build_online_kd(method)
    eager = copy.deepcopy(model)
    initial = copy.deepcopy(model)
    wrapper = build_optim_wrapper(model, optim_cfg)
    eager_wrapper = build_optim_wrapper(eager, optim_cfg)
    compiled_step = torch.compile(model.train_step)
    for i in range(2):
        if i:
            halve_lr(wrapper['cohort'], eager_wrapper['cohort'])
        # ONE's ramp: 0.29, then 0.73
        with train_progress(batch_idx=i, epoch=2 + i):
            log = compiled_step(uint8_views(num_views, i), wrapper)
            eager_log = eager.train_step(uint8_views(num_views, i),
                                         eager_wrapper)
        assert log.keys() == eager_log.keys()
        for key, value in eager_log.items():
            torch.testing.assert_close(log[key], value, rtol=1e-4, atol=1e-5,
                                       msg=key)
    state, eager_state = model.state_dict(), eager.state_dict()
    moved = 0
    for (name, p), p0 in zip(state.items(), initial.state_dict().values()):
        torch.testing.assert_close(p, eager_state[name], rtol=1e-4,
                                   atol=1e-5, msg=name)
        moved += not torch.equal(p, p0)
    assert moved > len(state) // 2


def test_a_moving_ramp_does_not_recompile():
    """ONE's ramp moves every epoch: the compiled step gets the factor as a
    tensor (an eager ``ramp_weights``), so five epochs run the graphs of
    the first steps, and log the ramp the eager step logs. A Python number
    read in the compiled step would be a guarded constant: a new graph per
    epoch, eager after Dynamo's limit of 8."""
    model, optim_cfg = build_online_kd('one')
    eager = copy.deepcopy(model)
    wrapper = build_optim_wrapper(model, optim_cfg)
    eager_wrapper = build_optim_wrapper(eager, optim_cfg)
    compiled_step = torch.compile(model.train_step)
    graphs, ramps = [], []
    for epoch in range(5):  # the ramp (4 epochs): 0.007, 0.06, 0.29, ...
        with train_progress(batch_idx=0, epoch=epoch):
            log = compiled_step(uint8_views(0, epoch), wrapper)
            eager_log = eager.train_step(uint8_views(0, epoch), eager_wrapper)
        graphs.append(counters['stats']['unique_graphs'])
        ramps.append(float(log['ramp/kd_ensemble']))
        torch.testing.assert_close(log['ramp/kd_ensemble'],
                                   eager_log['ramp/kd_ensemble'])
        torch.testing.assert_close(log['loss'], eager_log['loss'],
                                   rtol=1e-4, atol=1e-5)
    assert len(set(ramps)) == 5 and ramps[-1] == 1.
    assert graphs[1] == graphs[2] == graphs[3] == graphs[4], graphs
