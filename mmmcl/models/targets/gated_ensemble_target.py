"""ONE's gate: a learned, per-sample weighting of the branches' logits."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs


@MODELS.register_module()
class GatedEnsembleTarget(nn.Module):
    r"""The gated ensemble of ONE (Lan et al. 2018).

    :math:`g = \mathrm{softmax}(\mathrm{ReLU}(\mathrm{BN}(W\,\mathrm{GAP}(x)
    + b)))` over the N branches, from the shared trunk's output x, and
    :math:`z_e = \sum_i g_i z_i`. The ensemble is trained by its own CE; the
    branches mimic it detached, which the caller does (the gate learns from
    the CE alone).

    Args:
        in_channels (int): Channels of the trunk output x.
        num_branches (int): N.
    """

    def __init__(self, in_channels: int, num_branches: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_branches)
        self.bn = nn.BatchNorm1d(num_branches)

    def gate(self, trunk: Tensor) -> Tensor:
        """g (B, N) from the trunk output x (B, in_channels, H, W)."""
        pooled = F.adaptive_avg_pool2d(trunk, 1).flatten(1)
        return F.softmax(F.relu(self.bn(self.fc(pooled))), dim=1)

    def forward(self, outputs: PeerOutputs) -> Tensor:
        """Ensemble logits z_e (B, C) of the N branches, gated from the
        trunk's first split output ``outputs.trunk[0]``."""
        if not outputs.trunk:
            raise ValueError('GatedEnsembleTarget gates on the shared trunk'
                             ": use peers of type 'BranchedClassifier'.")
        if len(outputs) != self.fc.out_features:
            raise ValueError(f'GatedEnsembleTarget has {self.fc.out_features}'
                             f' gates, got {len(outputs)} branches.')
        gate = self.gate(outputs.trunk[0])
        return torch.einsum('bn,nbc->bc', gate,
                            torch.stack(list(outputs.logits)))
