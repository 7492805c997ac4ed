"""ResNet for 32x32 inputs (He et al., CVPR 2016, section 4.2)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck

from mmmcl.registry import MODELS


class _StagedBackbone(BaseBackbone):
    """What the CIFAR backbones share: a stem, S stages, a tail.

    Subclasses build ``self.stem``, ``self.stages`` (``nn.ModuleList`` of
    ``nn.Sequential``, the first block of each doing the stride / channel
    change), ``self.post_stages`` (applied to the last stage's output only)
    and ``self.out_channels``, then call :meth:`_freeze_stages`.

    Args:
        num_stages (int): Number of stages S.
        out_indices (int | Sequence[int]): Stages whose outputs are returned,
            from ``-S`` to ``S - 1``; kept sorted, without repeats.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and
            the first k stages (k = S also ``post_stages``).
        norm_eval (bool): Keep BN layers in eval mode while training.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    def __init__(self, num_stages: int, out_indices: Union[int, Sequence[int]],
                 frozen_stages: int, norm_eval: bool,
                 init_cfg: Optional[Union[dict, List[dict]]]) -> None:
        super().__init__(init_cfg)
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        valid = list(range(num_stages))
        normalised = set()
        for index in out_indices:
            if not -num_stages <= index < num_stages:
                raise ValueError(
                    f'out_indices: {index} is out of range; valid indices '
                    f'are {valid} (or {[i - num_stages for i in valid]})')
            normalised.add(index % num_stages)
        if not normalised:
            raise ValueError('out_indices must select at least one stage')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}], '
                             f'got {frozen_stages}')
        self.num_stages = num_stages
        self.out_indices = tuple(sorted(normalised))
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

    def _freeze_stages(self) -> None:
        frozen = []
        if self.frozen_stages >= 0:
            frozen.append(self.stem)
        frozen.extend(self.stages[:max(self.frozen_stages, 0)])
        if self.frozen_stages == self.num_stages:
            frozen.append(self.post_stages)
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Run the stem and the stages.

        Args:
            x (Tensor): Images, shape (N, 3, H, W).

        Returns:
            tuple[Tensor]: The outputs of the stages in ``out_indices``, in
            stage order, shape (N, out_channels[i], H_i, W_i); the last
            stage's output has gone through ``post_stages``.
        """
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == self.num_stages - 1:
                x = self.post_stages(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> '_StagedBackbone':
        """Set train / eval mode, keeping frozen stages and, with
        ``norm_eval``, every BN layer in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


@MODELS.register_module()
class CifarResNet(_StagedBackbone):
    """ResNet-(6n+2) for CIFAR (He et al., "Deep Residual Learning for Image
    Recognition", CVPR 2016).

    Stem: 3x3 conv (16 channels, stride 1) + BN + ReLU, no max-pool. Three
    stages of n blocks with 16 / 32 / 64 channels (x4 for bottlenecks),
    strides 1 / 2 / 2, so a 32x32 input gives 32x32, 16x16 and 8x8 maps.
    When a block changes the stride or the channels, its shortcut is a 1x1
    conv + BN (option B), as in the authors' L-MCL code
    (``models/resnet_cifar.py``, ``models/lmcl_resnet_cifar.py``); He et al.
    used zero-padded identities (option A) instead, about 3k parameters
    fewer for BasicBlocks. There is no ``post_stages`` (``nn.Identity``).

    Depths: ``6n+2`` with BasicBlocks (20, 32, 44, 56, 110, ...; ResNet-110
    has 18 blocks per stage, 1.73M parameters with a 100-class fc), or
    ``9n+2`` with ``block='bottleneck'``. Note: the authors' L-MCL code builds
    its ResNet-110 (``resnet110_cifar``, ``lmcl_resnet110_cifar``) from
    bottlenecks, 12 per stage (about 1.2M parameters, 256 output channels);
    that is ``CifarResNet(depth=110, block='bottleneck')``.

    Args:
        depth (int): Network depth, ``6n+2`` (BasicBlock) or ``9n+2``
            (Bottleneck), n >= 1.
        block (str): ``'basic'`` or ``'bottleneck'``. Defaults to ``'basic'``.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Stages (0, 1, 2 or negative) whose
            outputs ``forward`` returns. Defaults to ``(2, )``.
        frozen_stages (int): Stop gradients and keep eval mode for the stem
            (0) and the first k stages (k). Defaults to -1 (none).
        norm_cfg (dict): Config of the norm layers. Defaults to
            ``dict(type='BN')``.
        norm_eval (bool): Keep BN layers in eval mode (frozen running
            statistics) in training. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to Kaiming (fan-out, normal) for convs, ones for BN.

    Attributes:
        stem (nn.Sequential): Conv + BN + ReLU.
        stages (nn.ModuleList): Three ``nn.Sequential`` of blocks; the first
            block of each changes the stride / channels.
        post_stages (nn.Module): ``nn.Identity()``.
        out_channels (list[int]): Channels of each stage's output.
    """

    # block class, layers per block, usual depths
    block_types = {
        'basic': (BasicBlock, 6, (20, 32, 44, 56, 110)),
        'bottleneck': (Bottleneck, 9, (110, 164)),
    }
    stage_channels = (16, 32, 64)
    stage_strides = (1, 2, 2)

    def __init__(
        self,
        depth: int,
        block: str = 'basic',
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
        if block not in self.block_types:
            raise ValueError(f'block must be one of {list(self.block_types)}, '
                             f'got {block!r}')
        block_cls, layers_per_block, usual = self.block_types[block]
        if depth < layers_per_block + 2 or (depth - 2) % layers_per_block:
            raise ValueError(
                f'depth must be {layers_per_block}n+2 with {block} blocks '
                f'(e.g. {list(usual)}), got depth={depth}')
        self.depth = depth
        num_blocks = (depth - 2) // layers_per_block
        expansion = 4 if block == 'bottleneck' else 1

        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
            build_norm_layer(norm_cfg, 16)[1], nn.ReLU(inplace=True))
        self.stages = nn.ModuleList()
        self.out_channels = []
        channels = 16
        for width, stride in zip(self.stage_channels, self.stage_strides):
            out = width * expansion
            downsample = None
            if stride != 1 or channels != out:
                downsample = nn.Sequential(
                    nn.Conv2d(channels, out, 1, stride=stride, bias=False),
                    build_norm_layer(norm_cfg, out)[1])
            blocks = [
                block_cls(
                    channels,
                    out,
                    expansion=expansion,
                    stride=stride,
                    downsample=downsample,
                    norm_cfg=norm_cfg)
            ]
            blocks += [
                block_cls(out, out, expansion=expansion, norm_cfg=norm_cfg)
                for _ in range(num_blocks - 1)
            ]
            self.stages.append(nn.Sequential(*blocks))
            self.out_channels.append(out)
            channels = out
        self.post_stages = nn.Identity()
        self._freeze_stages()
