import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmmcl.registry import MODELS


@MODELS.register_module()
class EmbeddingHead(BaseModule):
    """Projection of a pooled feature to the contrastive embedding space.

    ``e = normalize(Linear(ReLU(Linear(f))))`` (paper section 2), no BN.

    Args:
        in_channels (int): Width D_m of the pooled feature f.
        embed_dim (int): Embedding size. Defaults to 128.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dim: int = 128,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.proj = nn.Sequential(
            nn.Linear(in_channels, embed_dim), nn.ReLU(inplace=True),
            nn.Linear(embed_dim, embed_dim))

    def forward(self, feats: Tensor) -> Tensor:
        """(B, D_m) -> L2-normalised (B, embed_dim)."""
        return F.normalize(self.proj(feats), dim=1)
