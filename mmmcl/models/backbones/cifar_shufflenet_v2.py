"""ShuffleNetV2 for 32x32 inputs (Ma et al., ECCV 2018)."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmpretrain.models.utils import channel_shuffle

from mmmcl.registry import MODELS
from .cifar_resnet import _StagedBackbone


def _conv_bn(in_channels: int,
             out_channels: int,
             kernel_size: int,
             norm_cfg: dict,
             stride: int = 1,
             depthwise: bool = False,
             relu: bool = True) -> nn.Sequential:
    layers = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            groups=in_channels if depthwise else 1,
            bias=False),
        build_norm_layer(norm_cfg, out_channels)[1]
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit (Fig. 3c / 3d of the paper).

    Stride 1: the input's first half passes unchanged, the second half goes
    through 1x1 conv-BN-ReLU, 3x3 depthwise conv-BN, 1x1 conv-BN-ReLU.
    Stride 2: the whole input goes through two branches, (3x3 depthwise
    conv-BN, 1x1 conv-BN-ReLU) and the one above with a strided depthwise
    conv, each giving ``out_channels // 2`` channels. Both concatenate and
    shuffle the channels in two groups.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels; must equal ``in_channels`` when
            ``stride`` is 1.
        stride (int): 1 or 2.
        norm_cfg (dict): Config of the norm layers.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 norm_cfg: dict) -> None:
        super().__init__()
        if stride == 1 and in_channels != out_channels:
            raise ValueError('a stride-1 unit keeps its channels, got '
                             f'{in_channels} -> {out_channels}')
        mid = out_channels // 2
        # a stride-1 unit passes its first ``mid`` channels through
        self.kept = 0 if stride > 1 else mid
        branch_in = in_channels - self.kept
        self.branch2 = nn.Sequential(
            _conv_bn(branch_in, mid, 1, norm_cfg),
            _conv_bn(
                mid, mid, 3, norm_cfg, stride, depthwise=True, relu=False),
            _conv_bn(mid, mid, 1, norm_cfg))
        self.branch1 = None
        if stride > 1:
            self.branch1 = nn.Sequential(
                _conv_bn(
                    in_channels,
                    in_channels,
                    3,
                    norm_cfg,
                    stride,
                    depthwise=True,
                    relu=False), _conv_bn(in_channels, mid, 1, norm_cfg))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            out = torch.cat((x[:, :self.kept], self.branch2(x[:, self.kept:])),
                            dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


@MODELS.register_module()
class CifarShuffleNetV2(_StagedBackbone):
    """ShuffleNetV2 for CIFAR (Ma et al., "ShuffleNet V2: Practical Guidelines
    for Efficient CNN Architecture Design", ECCV 2018), as in the authors'
    L-MCL code (``models/shufflenetv2_cifar.py``).

    Stem: 3x3 conv (24 channels, stride 1) + BN + ReLU, no max-pool. Three
    stages, each a stride-2 unit followed by 3 / 7 / 3 stride-1 units, so a
    32x32 input gives 16x16, 8x8 and 4x4 maps. The final 1x1 conv + BN +
    ReLU (to 1024 or 2048 channels) lives in ``post_stages`` and is applied
    to the last stage's output; ``out_channels[-1]`` counts its channels.

    Args:
        widen_factor (float): 0.5, 1.0, 1.5 or 2.0; stage channels
            (48, 96, 192), (116, 232, 464), (176, 352, 704) or
            (224, 488, 976), final conv 1024 (2048 for 2.0). Defaults
            to 1.0.
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
        stem (nn.Sequential): Conv + BN + ReLU.
        stages (nn.ModuleList): Three ``nn.Sequential`` of units; the first
            unit of each halves the resolution and changes the channels.
        post_stages (nn.Sequential): 1x1 conv + BN + ReLU.
        out_channels (list[int]): Channels of the stage outputs as
            ``forward`` returns them, e.g. ``[116, 232, 1024]`` for 1.0.
    """

    arch_settings = {
        0.5: ((48, 96, 192), 1024),
        1.0: ((116, 232, 464), 1024),
        1.5: ((176, 352, 704), 1024),
        2.0: ((224, 488, 976), 2048),
    }
    stage_blocks = (3, 7, 3)
    stem_channels = 24

    def __init__(
        self,
        widen_factor: float = 1.0,
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
            len(self.stage_blocks), out_indices, frozen_stages, norm_eval,
            init_cfg)
        if widen_factor not in self.arch_settings:
            raise ValueError(
                f'widen_factor must be one of {list(self.arch_settings)}, '
                f'got {widen_factor}')
        self.widen_factor = widen_factor
        widths, final_channels = self.arch_settings[widen_factor]

        self.stem = _conv_bn(in_channels, self.stem_channels, 3, norm_cfg)
        self.stages = nn.ModuleList()
        channels = self.stem_channels
        for width, num_units in zip(widths, self.stage_blocks):
            units = [_ShuffleUnit(channels, width, 2, norm_cfg)]
            units += [
                _ShuffleUnit(width, width, 1, norm_cfg)
                for _ in range(num_units)
            ]
            self.stages.append(nn.Sequential(*units))
            channels = width
        self.post_stages = _conv_bn(channels, final_channels, 1, norm_cfg)
        self.out_channels = list(widths[:-1]) + [final_channels]
        self._freeze_stages()
