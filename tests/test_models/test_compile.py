"""``torch.compile`` of a cohort's ``train_step`` (MMEngine's
``compile=True``): the normal step compiles, the meta step runs eagerly
inside it. Compiling takes about a minute on a CPU: slow set."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope

from test_cohort_distiller import batch, build, optim_wrappers  # noqa: I100

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def mmmcl_scope():
    with DefaultScope.overwrite_default_scope('mmmcl'):
        yield


def uint8_batch():
    inputs, samples = batch()
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

    model.train_iter = eager.train_iter = 1  # normal step only
    log = compiled_step(uint8_batch(), wrappers)
    eager_log = eager.train_step(uint8_batch(), eager_wrappers)
    for key, value in eager_log.items():
        torch.testing.assert_close(log[key], value, rtol=1e-4, atol=1e-5,
                                   msg=key)
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)

    before = copy.deepcopy(model)  # theta and phi before step 2
    model.train_iter = 0  # the meta step is due
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
    labels = torch.cat([s.gt_label for s in data['data_samples']])
    reference.meta_update(data['inputs'], labels, labels,
                          reference_wrappers['cohort'],
                          reference_wrappers['meta'])
    moved = 0
    for (name, p), q, b in zip(model.meta_net.named_parameters(),
                               reference.meta_net.parameters(),
                               before.meta_net.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=name)
        moved += not torch.equal(p, b)
    assert moved
