"""MetaStep on its own: closed forms, the reference's switches."""
import pytest
import torch
import torch.nn as nn
from torch.func import functional_call

from mmmcl.models.distillers import MetaProblem, MetaStep
from mmmcl.testing.lmcl_reference import MetaSGD

LRS = (0.1, 0.05)
WDS = (0.01, 0.2)
MU = 0.9


def quadratic_problem(seed=0):
    """theta = (w1 (3, ), w2 (2, 2)), phi (7, ); inner
    0.5 theta^T A theta - phi^T theta, outer 0.5 theta^T Q theta - c^T
    theta, with A, Q symmetric positive definite."""
    gen = torch.Generator().manual_seed(seed)

    def spd(n):
        m = torch.randn(n, n, generator=gen, dtype=torch.float64)
        return m @ m.T / n + torch.eye(n, dtype=torch.float64)

    A, Q = spd(7), spd(7)
    c = torch.randn(7, generator=gen, dtype=torch.float64)
    theta = dict(
        w1=torch.randn(3, generator=gen, dtype=torch.float64),
        w2=torch.randn(2, 2, generator=gen, dtype=torch.float64))
    phi = torch.randn(7, generator=gen, dtype=torch.float64)

    def flat(params):
        return torch.cat([params['w1'], params['w2'].reshape(-1)])

    def inner(params, buffers):
        x = flat(params)
        return 0.5 * x @ A @ x - phi_leaf @ x

    def outer(params, buffers):
        x = flat(params)
        return 0.5 * x @ Q @ x - c @ x

    phi_leaf = phi.clone().requires_grad_()
    return dict(A=A, Q=Q, c=c, theta=theta, phi=phi_leaf, inner=inner,
                outer=outer, flat=flat)


def closed_form_hypergradient(prob, steps):
    """Forward-mode: d theta_t / d phi propagated as 7 x 7 matrices through
    buf_t = mu buf_{t-1} + (G_t + WD) theta_t - E_t phi, theta_{t+1} =
    theta_t - LR buf_t (G = A, E = I on the inner steps, G = Q, E = 0 and
    the constant -c on the last one)."""
    A, Q, c, phi = prob['A'], prob['Q'], prob['c'], prob['phi'].detach()
    eye = torch.eye(7, dtype=torch.float64)
    lr = torch.diag(
        torch.tensor([LRS[0]] * 3 + [LRS[1]] * 4, dtype=torch.float64))
    wd = torch.diag(
        torch.tensor([WDS[0]] * 3 + [WDS[1]] * 4, dtype=torch.float64))
    x = prob['flat'](prob['theta'])
    jac_x = torch.zeros(7, 7, dtype=torch.float64)
    buf = torch.zeros(7, dtype=torch.float64)
    jac_buf = torch.zeros(7, 7, dtype=torch.float64)
    for t in range(steps + 1):
        inner_step = t < steps
        G = A if inner_step else Q
        shift = phi if inner_step else c
        buf = MU * buf + (G + wd) @ x - shift
        jac_buf = MU * jac_buf + (G + wd) @ jac_x - (
            eye if inner_step else 0 * eye)
        x = x - lr @ buf
        jac_x = jac_x - lr @ jac_buf
    return jac_x.T @ (Q @ x - c), 0.5 * x @ Q @ x - c @ x


def hypergradient(prob, steps, **switches):
    step = MetaStep(virtual_steps=steps, momentum=MU, **switches)
    return step.hypergradient(
        MetaProblem(prob['theta'], LRS, WDS, {}, prob['inner'],
                    prob['outer'], [prob['phi']]))


@pytest.mark.parametrize('steps', [1, 2, 5])
def test_exact_hypergradient_equals_the_closed_form(steps):
    prob = quadratic_problem()
    result = hypergradient(prob, steps)
    expected, outer = closed_form_hypergradient(prob, steps)
    torch.testing.assert_close(result.grads[0], expected, rtol=1e-12,
                               atol=1e-14)
    torch.testing.assert_close(result.outer_loss, outer, rtol=1e-12,
                               atol=0)


def reference_meta_sgd_hypergradient(prob, steps):
    """The same problem through the transcription of the authors' MetaSGD
    (virtual steps, then ``meta_backward``)."""
    holder = nn.Module()
    holder.w1 = nn.Parameter(prob['theta']['w1'].clone())
    holder.w2 = nn.Parameter(prob['theta']['w2'].clone())
    params = dict(w1=holder.w1, w2=holder.w2)
    groups = [
        dict(params=[holder.w1], lr=LRS[0], weight_decay=WDS[0]),
        dict(params=[holder.w2], lr=LRS[1], weight_decay=WDS[1]),
    ]
    sgd = MetaSGD(groups, [holder], lr=0.1, momentum=MU, rollback=True)
    for _ in range(steps):
        sgd.zero_grad(set_to_none=False)
        sgd.step(lambda: prob['inner'](params, {}))
    sgd.zero_grad(set_to_none=False)
    sgd.step(lambda: prob['outer'](params, {}))
    sgd.zero_grad(set_to_none=False)
    prob['phi'].grad = None
    prob['outer'](params, {}).backward()
    sgd.meta_backward()
    return prob['phi'].grad


@pytest.mark.parametrize('steps', [1, 2, 3])
def test_reference_adjoint_equals_the_authors_meta_sgd(steps):
    prob = quadratic_problem(seed=1)
    expected = reference_meta_sgd_hypergradient(prob, steps)
    result = hypergradient(prob, steps, momentum_adjoint='reference')
    torch.testing.assert_close(result.grads[0], expected, rtol=1e-12,
                               atol=1e-14)
    exact, _ = closed_form_hypergradient(prob, steps)
    if steps > 1:  # one step has no momentum adjoint to propagate
        assert (result.grads[0] - exact).norm() > 1e-3 * exact.norm()
    else:
        torch.testing.assert_close(result.grads[0], exact, rtol=1e-12,
                                   atol=1e-14)


class ConvBN(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.gate = nn.Linear(3, 3, bias=False)  # phi


def bn_problem():
    torch.manual_seed(0)
    model = ConvBN().double().train()
    inputs = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    theta = {n: p for n, p in model.named_parameters()
             if not n.startswith('gate')}
    buffers = dict(model.named_buffers())

    def features(params, state):
        return _forward(model, params, state, inputs)

    def inner(params, state):
        f = features(params, state)
        return (model.gate(f)**2).mean()

    def outer(params, state):
        return features(params, state).pow(2).mean()

    return model, inputs, theta, buffers, inner, outer


def _forward(model, params, state, inputs):
    x = functional_call(model.conv, {
        'weight': params['conv.weight'],
        'bias': params['conv.bias']
    }, (inputs, ))
    x = functional_call(
        model.bn, ({
            'weight': params['bn.weight'],
            'bias': params['bn.bias']
        }, {k[3:]: v
            for k, v in state.items() if k.startswith('bn.')}), (x, ))
    return x.mean((2, 3))


@pytest.mark.parametrize('replay_bn', ['none', 'reference'])
def test_replay_bn_switch(replay_bn):
    """``none`` leaves every buffer; ``reference`` leaves one train-mode
    BatchNorm update at theta_0, as the reference's replay keeps."""
    model, inputs, theta, buffers, inner, outer = bn_problem()
    before = {n: b.clone() for n, b in buffers.items()}
    expected = ConvBN().double().train()
    expected.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected.bn(expected.conv(inputs))
    step = MetaStep(virtual_steps=2, replay_bn=replay_bn)
    step.hypergradient(
        MetaProblem(theta, [0.1] * len(theta), [5e-4] * len(theta), buffers,
                    inner, outer, list(model.gate.parameters())))
    target = before if replay_bn == 'none' else dict(
        expected.named_buffers())
    for n, b in model.named_buffers():
        torch.testing.assert_close(b, target[n], rtol=0, atol=0)
    if replay_bn == 'reference':
        assert int(model.bn.num_batches_tracked) == 1
        assert not torch.equal(model.bn.running_mean, before['bn.running_mean'])


@pytest.mark.parametrize('virtual_buffers', ['fresh', 'carried'])
def test_virtual_buffers_switch(virtual_buffers):
    """Each objective call writes the buffer it reads (a counter and a
    replaced tensor, as the carried banks are). ``carried``: step t reads
    what step t - 1 left, forward and replay alike; ``fresh``: every call
    reads the given value. With ``replay_bn='reference'`` the replay of
    step 0's writes reach the given buffers."""
    calls = []
    theta = dict(w=torch.ones(2, dtype=torch.float64))
    phi = torch.ones(2, dtype=torch.float64, requires_grad=True)

    def inner(params, state):
        calls.append(int(state['count']))
        state['count'].add_(1)
        state['bank'] = state['bank'] + 1.
        return (params['w'] * phi * state['bank']).sum()

    def outer(params, state):
        calls.append(int(state['count']))
        return params['w'].pow(2).sum()

    buffers = dict(count=torch.zeros((), dtype=torch.long),
                   bank=torch.zeros(2, dtype=torch.float64))
    bank = buffers['bank']
    MetaStep(virtual_steps=3, replay_bn='reference',
             virtual_buffers=virtual_buffers).hypergradient(
                 MetaProblem(theta, [0.1], [0.], buffers, inner, outer,
                             [phi]))
    if virtual_buffers == 'carried':
        # forward 0, 1, 2, outer step 3, outer loss 3; replay 3, 2, 1, 0
        assert calls == [0, 1, 2, 3, 3, 3, 2, 1, 0]
    else:
        assert calls == [0] * 9
    assert int(buffers['count']) == 1  # the replay of step 0's write
    assert torch.equal(bank, torch.ones(2, dtype=torch.float64))


def test_bad_switches():
    with pytest.raises(ValueError, match='momentum_adjoint'):
        MetaStep(momentum_adjoint='approx')
    with pytest.raises(ValueError, match='replay_bn'):
        MetaStep(replay_bn='all')
    with pytest.raises(ValueError, match='virtual_buffers'):
        MetaStep(virtual_buffers='shared')
    with pytest.raises(ValueError, match='virtual_steps'):
        MetaStep(virtual_steps=0)
