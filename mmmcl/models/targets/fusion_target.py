"""FFL's fusion module: a classifier on the branches' fused feature maps."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from torch import Tensor

from mmmcl.registry import MODELS
from ..utils import PeerOutputs


@MODELS.register_module()
class FusionTarget(nn.Module):
    r"""The fusion classifier of FFL (Kim et al. 2020).

    The branches' last feature maps are concatenated (:math:`\sum_i C_i`
    channels), then depthwise 3x3 conv + BN + ReLU, 1x1 conv (to
    ``out_channels``) + BN + ReLU, global average pooling and a linear
    classifier. The branches mimic its logits (detached); it mimics the
    branches' mean and has its own optimizer in the reference (weight
    decay 1e-5). Its input is not detached: its losses reach the branches.

    Args:
        in_channels (Sequence[int]): Channels of each branch's map.
        num_classes (int): C.
        out_channels (int, optional): Of the 1x1 conv. Defaults to
            ``in_channels[0]`` (the reference's 64).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 out_channels: Optional[int] = None) -> None:
        super().__init__()
        fused = sum(in_channels)
        out_channels = out_channels or in_channels[0]
        norm = dict(type='BN')
        self.depthwise = ConvModule(fused,
                                    fused,
                                    3,
                                    padding=1,
                                    groups=fused,
                                    bias=False,
                                    norm_cfg=norm)
        self.pointwise = ConvModule(fused,
                                    out_channels,
                                    1,
                                    bias=False,
                                    norm_cfg=norm)
        self.fc = nn.Linear(out_channels, num_classes)

    def forward(self, outputs: PeerOutputs) -> Tensor:
        """Fused logits (B, C) from the branches' last maps (B, C_i, H, W)."""
        x = torch.cat(list(outputs.maps), dim=1)
        x = self.pointwise(self.depthwise(x))
        return self.fc(x.mean((2, 3)))
