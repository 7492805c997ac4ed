"""OKDDip's first-level distillation: attention over the peers."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs


@MODELS.register_module()
class PeerAttentionTarget(nn.Module):
    r"""Peer i's target :math:`x_i = \sum_j a_{ij} z_j` (OKDDip, Chen et al.
    2020), the self term included.

    :math:`a_{ij} = \mathrm{softmax}_j(q_i^\top k_j)` (no scaling), with
    :math:`q_i = W_q h_i`, :math:`k_j = W_k h_j` bias-free projections of
    the peers' pooled features :math:`h` (one pair shared by all peers).
    As in the reference, nothing is detached: the KD terms train the
    projections, and reach the other peers through the target.

    Args:
        in_channels (int): Channels D of the pooled features h.
        proj_channels (int, optional): d. Defaults to ``in_channels // 8``
            (the reference's 8 for ResNet-32, 32 for ResNet-110).
    """

    def __init__(self,
                 in_channels: int,
                 proj_channels: Optional[int] = None) -> None:
        super().__init__()
        proj_channels = proj_channels or max(1, in_channels // 8)
        self.query = nn.Linear(in_channels, proj_channels, bias=False)
        self.key = nn.Linear(in_channels, proj_channels, bias=False)

    def attention(self, feats: Sequence[Tensor]) -> Tensor:
        """a (B, N, N) from the N pooled features h_i, each (B, D)."""
        h = torch.stack(list(feats), dim=1)  # (B, N, D)
        energy = self.query(h) @ self.key(h).transpose(1, 2)  # (B, N, N)
        return energy.softmax(dim=-1)

    def forward(self, outputs: PeerOutputs) -> List[Tensor]:
        """The N targets x_i (B, C), from the peers' features and logits."""
        attention = self.attention(outputs.feats)
        targets = attention @ torch.stack(list(outputs.logits), dim=1)
        return list(targets.unbind(1))
