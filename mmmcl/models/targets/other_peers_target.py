"""Every other peer's logits, one target each (PCL's peer mean teacher)."""
from typing import List

import torch.nn as nn
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs


@MODELS.register_module()
class OtherPeersTarget(nn.Module):
    r"""Peer i's targets: the logits :math:`z_j` of every peer j != i.

    The distiller mimics each with its own KD term and averages them,
    :math:`\frac{1}{N-1}\sum_{j \ne i} \mathrm{KD}(z_i, z_j)`, as PCL's
    re-implementation does with its temporal-mean peers (``PMLoss``);
    :class:`PeerMeanTarget` with ``exclude_self=True`` is the one KD to the
    mean of the same logits instead.

    Args:
        detach (bool): Stop gradients into the targets. Defaults to True.
    """

    def __init__(self, detach: bool = True):
        super().__init__()
        self.detach = detach

    def forward(self, outputs: PeerOutputs) -> List[List[Tensor]]:
        """For each of the N peers, the N - 1 others' logits, (B, C) each."""
        logits = [z.detach() if self.detach else z for z in outputs.logits]
        if len(logits) < 2:
            raise ValueError('OtherPeersTarget needs at least 2 peers, got '
                             f'{len(logits)}.')
        return [[z for j, z in enumerate(logits) if j != i]
                for i in range(len(logits))]

    def extra_repr(self) -> str:
        return f'detach={self.detach}'
