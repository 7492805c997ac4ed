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

    Args:
        temperature (float): T > 0. Defaults to 3.0.
    """

    def __init__(self, temperature: float = 3.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError('LogitKDLoss: `temperature` must be positive, '
                             f'got {temperature}.')
        self.temperature = temperature

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss of ``logits`` (B, C) mimicking ``target`` (B, C)."""
        t = self.temperature
        return F.kl_div(
            F.log_softmax(logits / t, dim=1),
            F.log_softmax(target / t, dim=1),
            reduction='batchmean',
            log_target=True) * t**2

    def extra_repr(self) -> str:
        return f'temperature={self.temperature}'
