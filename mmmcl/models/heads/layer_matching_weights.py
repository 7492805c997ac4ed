from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import block_group_index


@MODELS.register_module()
class LayerMatchingWeights(BaseModule):
    r"""The meta-network phi of L-MCL: per-sample layer-matching weights.

    One ``Linear(D_m^s -> proj_dim)`` :math:`P_m^s` per (net, stage) on the
    raw pooled feature; the weight of block (i, k, j, z) for sample r is
    :math:`w = \sigma(\cos(P_i^k f_i^k, P_j^z f_j^z))` (paper section 4).

    Args:
        feat_dims (Sequence[Sequence[int]]): ``feat_dims[m][s]`` is the
            pooled width of net m at stage s.
        proj_dim (int): Projection size. Defaults to 128.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 feat_dims: Sequence[Sequence[int]],
                 proj_dim: int = 128,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_stages = [len(dims) for dims in feat_dims]
        self.proj = nn.ModuleList(
            nn.ModuleList(nn.Linear(d, proj_dim) for d in dims)
            for dims in feat_dims)

    @property
    def num_blocks(self) -> int:
        """Number of (i, k, j, z) blocks, i != j."""
        total = sum(self.num_stages)
        return total**2 - sum(s**2 for s in self.num_stages)

    def forward(self, features: Sequence[Sequence[Tensor]]) -> Tensor:
        """Weights of every block, ordered as
        :func:`mmmcl.models.utils.cohort_blocks`.

        Args:
            features (Sequence[Sequence[Tensor]]): ``features[m][s]`` of
                shape (B, D_m^s).

        Returns:
            Tensor: (num_blocks, B), values in (0, 1).
        """
        if [len(f) for f in features] != self.num_stages:
            raise ValueError(
                'LayerMatchingWeights was built for stages '
                f'{self.num_stages} per net, got {[len(f) for f in features]}'
                '.')
        projected = torch.stack([
            F.normalize(proj(f), dim=1)
            for projs, feats in zip(self.proj, features)
            for proj, f in zip(projs, feats)
        ])  # (G, B, proj_dim)
        g, h = block_group_index(self.num_stages, device=projected.device)
        cosine = (projected[g] * projected[h]).sum(-1)
        return torch.sigmoid(cosine)
