"""KDCL-MinLogit: the ensemble target of Guo et al. 2020."""
import torch
import torch.nn as nn
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs


@MODELS.register_module()
class MinLogitTarget(nn.Module):
    r"""KDCL's MinLogit ensemble, :math:`z_c = \min_i (z_{i,c} - z_{i,y})`.

    Each peer's logits are shifted so that the true class y scores 0; the
    teacher takes, class by class, the smallest shifted logit over the N
    peers, i.e. for every wrong class the peer most confident against it.
    The target of every peer; detached (a teacher, not trained through).
    """

    def forward(self, outputs: PeerOutputs) -> Tensor:
        """Target (B, C) from the peers' logits (B, C) and labels y (B, )."""
        if outputs.labels is None:
            raise ValueError('MinLogitTarget needs the labels y.')
        logits = outputs.logits
        stacked = torch.stack(list(logits)).detach()  # (N, B, C)
        index = outputs.labels.view(1, -1, 1).expand(len(logits), -1, 1)
        shifted = stacked - stacked.gather(2, index)
        return shifted.min(0).values
