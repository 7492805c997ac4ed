"""ONE's gate: a learned, per-sample weighting of the branches' logits."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmmcl.registry import MODELS


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

    def forward(self, trunk: Tensor,
                logits: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Ensemble logits (B, C) and gate g (B, N).

        Args:
            trunk (Tensor): The trunk's output x, (B, in_channels, H, W).
            logits (Sequence[Tensor]): N branch logits, each (B, C).
        """
        if len(logits) != self.fc.out_features:
            raise ValueError(f'GatedEnsembleTarget has {self.fc.out_features}'
                             f' gates, got {len(logits)} branches.')
        pooled = F.adaptive_avg_pool2d(trunk, 1).flatten(1)
        gate = F.softmax(F.relu(self.bn(self.fc(pooled))), dim=1)
        ensemble = torch.einsum('bn,nbc->bc', gate, torch.stack(list(logits)))
        return ensemble, gate
