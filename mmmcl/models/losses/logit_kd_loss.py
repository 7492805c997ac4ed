"""Logit knowledge distillation: the KL term every online-KD method uses."""
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmmcl.registry import MODELS


@MODELS.register_module()
class LogitKDLoss(nn.Module):
    r"""Hinton's KD term, :math:`T^2\,\mathrm{KL}(p_t \| p_s)`, batch mean.

    :math:`p = \mathrm{softmax}(z / T)` of the target (teacher) logits
    :math:`z_t` and of the student's :math:`z_s`; the sum over classes,
    the mean over the batch (``reduction='batchmean'``), times :math:`T^2`
    so that the gradients keep their size across temperatures. Whether the
    target is detached is the caller's choice: DML, MCL and L-MCL detach
    it, OKDDip's attention targets are not.

    ONE, OKDDip and FFL's code adds :math:`\epsilon = 10^{-7}` to
    :math:`p_t` before its log (so :math:`p_t` sums to
    :math:`1 + C\epsilon`); ``target_eps`` reproduces that.

    Args:
        temperature (float): T > 0. Defaults to 3.0.
        target_eps (float): Added to :math:`p_t`. Defaults to 0 (the
            exact KL).
    """

    def __init__(self, temperature: float = 3.0,
                 target_eps: float = 0.) -> None:
        super().__init__()
        if temperature <= 0 or target_eps < 0:
            raise ValueError('LogitKDLoss: `temperature` must be positive '
                             'and `target_eps` non-negative, got '
                             f'{temperature}, {target_eps}.')
        self.temperature = temperature
        self.target_eps = target_eps

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss of ``logits`` (B, C) mimicking ``target`` (B, C)."""
        t = self.temperature
        log_p_s = F.log_softmax(logits / t, dim=1)
        if self.target_eps:
            p_t = F.softmax(target / t, dim=1) + self.target_eps
            kl = (p_t * (p_t.log() - log_p_s)).sum()
            return kl / logits.shape[0] * t**2
        return F.kl_div(
            log_p_s,
            F.log_softmax(target / t, dim=1),
            reduction='batchmean',
            log_target=True) * t**2

    def extra_repr(self) -> str:
        return f'temperature={self.temperature}, target_eps={self.target_eps}'
