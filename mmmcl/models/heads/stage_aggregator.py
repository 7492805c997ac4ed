from typing import Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmmcl.registry import MODELS


@MODELS.register_module()
class StageAggregator(BaseModule):
    r"""Aggregated logits of one net from all its stages (paper section 5).

    :math:`a_m = \mathrm{softmax}(\mathrm{MLP}([f_m^1, ..., f_m^S]))`,
    :math:`\hat z_m = \sum_s a_m^s z_m^s` with
    ``MLP = Linear(S*D_m -> D_m), ReLU, Linear(D_m -> S)``.

    Args:
        in_channels (int): Pooled width D_m of every stage.
        num_stages (int): Number of stages S.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 num_stages: int,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.mlp = nn.Sequential(
            nn.Linear(num_stages * in_channels, in_channels),
            nn.ReLU(inplace=True), nn.Linear(in_channels, num_stages))

    def forward(self, feats: Sequence[Tensor],
                logits: Sequence[Tensor]) -> Tensor:
        """S features (B, D_m) and S logits (B, C) -> logits (B, C)."""
        stage_weights = self.mlp(torch.cat(list(feats), dim=1)).softmax(1)
        return torch.einsum('bs,sbc->bc', stage_weights, torch.stack(logits))
