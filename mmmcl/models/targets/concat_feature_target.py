"""PCL's peer ensemble teacher: a classifier on the peers' joint feature."""
from typing import Sequence

import torch
import torch.nn as nn
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs


@MODELS.register_module()
class ConcatFeatureTarget(nn.Module):
    r"""The peer ensemble teacher of PCL (Wu & Gong 2021).

    A linear classifier on the concatenation of the N peers' pooled
    features, :math:`z_e = W [h_1; \dots; h_N] + b`, trained by its own CE;
    the peers mimic it detached. Its input is not detached: its CE reaches
    the peers.

    Args:
        in_channels (Sequence[int]): D_i of each peer's pooled feature.
        num_classes (int): C.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(sum(in_channels), num_classes)

    def forward(self, outputs: PeerOutputs) -> Tensor:
        """Ensemble logits (B, C) from the features h_i (B, D_i)."""
        return self.fc(torch.cat(list(outputs.feats), dim=1))
