"""Wide ResNet for 32x32 inputs (Zagoruyko & Komodakis, BMVC 2016)."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer

from mmmcl.registry import MODELS
from .cifar_resnet import _StagedBackbone


class _PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3 with a residual.

    When the block changes the channels or the stride, the shortcut is a
    1x1 conv applied to the pre-activated input ``relu(bn1(x))``; otherwise
    it is the raw input ``x``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv and of the shortcut.
        drop_rate (float): Dropout probability between the two convs.
        norm_cfg (dict): Config of the norm layers.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 drop_rate: float, norm_cfg: dict) -> None:
        super().__init__()
        self.bn1 = build_norm_layer(norm_cfg, in_channels)[1]
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.drop_rate = drop_rate
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(
                in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu(self.bn1(x))
        identity = x if self.shortcut is None else self.shortcut(act)
        out = self.relu(self.bn2(self.conv1(act)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return self.conv2(out) + identity


@MODELS.register_module()
class CifarWideResNet(_StagedBackbone):
    """WRN-d-k for CIFAR (Zagoruyko & Komodakis, "Wide Residual Networks",
    BMVC 2016), as in the authors' L-MCL code (``models/wrn_cifar.py``).

    Stem: a lone 3x3 conv with 16 channels (no BN / ReLU: the first block
    pre-activates). Three stages of n = (d - 4) / 6 pre-activation blocks
    with 16k / 32k / 64k channels, strides 1 / 2 / 2. The final BN + ReLU
    lives in ``post_stages`` and is applied to the last stage's output, so
    that an auxiliary branch built from copies of the later stages plus
    ``post_stages`` ends the way the backbone does.

    Args:
        depth (int): ``6n+4``, n >= 1 (16 and 40 in the paper). Defaults
            to 16.
        widen_factor (int): Width multiplier k. Defaults to 2.
        drop_rate (float): Dropout probability inside each block. Defaults
            to 0.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Stages (0, 1, 2 or negative) whose
            outputs ``forward`` returns. Defaults to ``(2, )``.
        frozen_stages (int): Stop gradients and keep eval mode for the stem
            (0), the first k stages (k), also ``post_stages`` (3). Defaults
            to -1 (none).
        norm_cfg (dict): Config of the norm layers. Defaults to
            ``dict(type='BN')``.
        norm_eval (bool): Keep BN layers in eval mode (frozen running
            statistics) in training. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to Kaiming (fan-out, normal) for convs, ones for BN.

    Attributes:
        stem (nn.Module): The first conv.
        stages (nn.ModuleList): Three ``nn.Sequential`` of blocks; the first
            block of each changes the stride / channels.
        post_stages (nn.Sequential): BN + ReLU.
        out_channels (list[int]): ``[16k, 32k, 64k]``.
    """

    stage_channels = (16, 32, 64)
    stage_strides = (1, 2, 2)

    def __init__(
        self,
        depth: int = 16,
        widen_factor: int = 2,
        drop_rate: float = 0.,
        in_channels: int = 3,
        out_indices: Union[int, Sequence[int]] = (2, ),
        frozen_stages: int = -1,
        norm_cfg: dict = dict(type='BN'),
        norm_eval: bool = False,
        init_cfg: Optional[Union[dict, List[dict]]] = [
            dict(type='Kaiming', layer=['Conv2d']),
            dict(type='Constant', val=1, layer=['_BatchNorm'])
        ]
    ) -> None:
        super().__init__(
            len(self.stage_channels), out_indices, frozen_stages, norm_eval,
            init_cfg)
        if depth < 10 or (depth - 4) % 6:
            raise ValueError('depth must be 6n+4 (e.g. [10, 16, 22, 28, 40]), '
                             f'got depth={depth}')
        if widen_factor < 1:
            raise ValueError(f'widen_factor must be >= 1, got {widen_factor}')
        self.depth = depth
        self.widen_factor = widen_factor
        num_blocks = (depth - 4) // 6

        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.stages = nn.ModuleList()
        self.out_channels = []
        channels = 16
        for width, stride in zip(self.stage_channels, self.stage_strides):
            out = width * widen_factor
            blocks = [
                _PreActBlock(channels if i == 0 else out, out,
                             stride if i == 0 else 1, drop_rate, norm_cfg)
                for i in range(num_blocks)
            ]
            self.stages.append(nn.Sequential(*blocks))
            self.out_channels.append(out)
            channels = out
        self.post_stages = nn.Sequential(
            build_norm_layer(norm_cfg, channels)[1], nn.ReLU(inplace=True))
        self._freeze_stages()
