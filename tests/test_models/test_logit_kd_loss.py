import math

import pytest
import torch

from mmmcl.models.losses import LogitKDLoss
from mmmcl.registry import MODELS


def test_value_by_hand():
    """T^2 * mean over rows of sum_c p_t log(p_t / p_s), p = softmax(z/T)."""
    logits = torch.tensor([[1., 0.], [0., 2.]], dtype=torch.float64)
    target = torch.tensor([[0., 1.], [0., 0.]], dtype=torch.float64)
    t = 2.
    expected = 0.
    for zs, zt in zip(logits.tolist(), target.tolist()):
        ps = [math.exp(v / t) for v in zs]
        pt = [math.exp(v / t) for v in zt]
        ps = [p / sum(ps) for p in ps]
        pt = [p / sum(pt) for p in pt]
        expected += sum(a * math.log(a / b) for a, b in zip(pt, ps))
    expected = t**2 * expected / 2
    loss = MODELS.build(dict(type='LogitKDLoss', temperature=t))
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-12)
    assert loss(logits, logits).item() == pytest.approx(0., abs=1e-12)


def test_gradients_against_finite_differences():
    torch.manual_seed(0)
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LogitKDLoss(3.), (logits, target))


def test_refuses_a_non_positive_temperature():
    with pytest.raises(ValueError, match='temperature'):
        LogitKDLoss(0.)
