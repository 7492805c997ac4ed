from typing import Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils.fresh_copies import STAGE_INIT_CFG, fresh_copies


@MODELS.register_module()
class AuxiliaryBranch(BaseModule):
    """An auxiliary exit of a backbone stage (paper section 1).

    Fresh copies of the stages after the branching point (all their blocks,
    or only the first block of each), global average pooling and a linear
    classifier, giving the pooled feature f and the logits z of a stage.

    Args:
        stages (Sequence[nn.Module]): The backbone's stages after the
            branching point; copied and re-initialised, never shared.
        post_stage (nn.Module): Applied after the last stage (copied).
        feat_dim (int): Width D_m of the pooled feature.
        num_classes (int): Number of classes C.
        depth (str): ``'full'`` copies whole stages (CIFAR recipe),
            ``'one_block'`` only the first block of each (ImageNet recipe).
            Defaults to ``'full'``.
        init_cfg (dict | list[dict]): Initialization config. Defaults to
            Kaiming conv and constant-one norm layers, as mmpretrain's
            ResNet.
    """

    def __init__(self,
                 stages: Sequence[nn.Module],
                 post_stage: nn.Module,
                 feat_dim: int,
                 num_classes: int,
                 depth: str = 'full',
                 init_cfg=STAGE_INIT_CFG) -> None:
        super().__init__(init_cfg=list(init_cfg) if init_cfg else None)
        if depth not in ('full', 'one_block'):
            raise ValueError(f"`aux_depth` must be 'full' or 'one_block', "
                             f'got {depth!r}.')
        if depth == 'one_block':
            stages = [
                nn.Sequential(s[0]) if isinstance(s, nn.Sequential) else s
                for s in stages
            ]
        self.layers = nn.Sequential(*fresh_copies([*stages, post_stage]))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(feat_dim, num_classes)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Stage output (B, C_k, H, W) -> feature (B, D_m), logits (B, C)."""
        feat = self.pool(self.layers(x)).flatten(1)
        return feat, self.fc(feat)
