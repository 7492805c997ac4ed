"""The mean of the peers' logits: the plainest online-KD target."""
from typing import List, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs


@MODELS.register_module()
class PeerMeanTarget(nn.Module):
    r"""Each peer's target: the mean of the cohort's logits.

    ``exclude_self=False``: :math:`\bar z = \frac{1}{N}\sum_j z_j` for every
    peer (MCL's optional logit KD, FFL's target of the fusion module,
    OKDDip's target of the group leader, KDCL-Naive). ``exclude_self=True``:
    :math:`\frac{1}{N-1}\sum_{j \ne i} z_j` for peer i (CL-ILR).

    Args:
        exclude_self (bool): Leave peer i out of its own target. Defaults
            to False.
        detach (bool): Stop gradients into the target (every reference
            but OKDDip's leader). Defaults to True.
    """

    def __init__(self, exclude_self: bool = False, detach: bool = True):
        super().__init__()
        self.exclude_self = exclude_self
        self.detach = detach

    def forward(self, outputs: PeerOutputs) -> Union[Tensor, List[Tensor]]:
        """The mean (B, C) shared by all peers, or with ``exclude_self``
        one target (B, C) per peer, from the N peers' logits."""
        logits = outputs.logits
        if len(logits) < 2:
            raise ValueError('PeerMeanTarget needs at least 2 peers, got '
                             f'{len(logits)}.')
        stacked = torch.stack(list(logits))  # (N, B, C)
        if self.detach:
            stacked = stacked.detach()
        total = stacked.sum(0)
        if self.exclude_self:
            n = len(logits) - 1
            return [(total - z) / n for z in stacked]
        return total / len(logits)

    def extra_repr(self) -> str:
        return f'exclude_self={self.exclude_self}, detach={self.detach}'
