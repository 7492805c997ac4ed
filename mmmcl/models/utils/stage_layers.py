"""Access to the stages of a backbone, in the order of its out_indices."""
from typing import List, Tuple

import torch.nn as nn

SUPPORTED_LAYOUTS = (
    '`res_layers` names (mmpretrain ResNet, ResNetV1c/d, ResNet_CIFAR, '
    'ResNeXt, SEResNet), `layers` names (MobileNetV2), a `layers` '
    'ModuleList (ShuffleNetV2) or `stages` + `post_stages` (mmmcl CIFAR nets)')


def stage_layers(backbone: nn.Module) -> Tuple[List[nn.Module], nn.Module]:
    """The stages of ``backbone`` indexed like its ``out_indices``.

    Returns:
        tuple: The stage modules and a module applied after the last stage
        only (``nn.Identity`` when there is none).

    Raises:
        TypeError: If the backbone has no known stage layout.
    """
    post = getattr(backbone, 'post_stages', None) or nn.Identity()
    if isinstance(getattr(backbone, 'stages', None), nn.ModuleList):
        return list(backbone.stages), post
    names = getattr(backbone, 'res_layers', None)
    layers = getattr(backbone, 'layers', None)
    if names is None and isinstance(layers, (list, tuple)):
        names = layers
    if names is not None and all(isinstance(n, str) for n in names):
        return [getattr(backbone, n) for n in names], post
    if isinstance(layers, nn.ModuleList):
        return list(layers), post
    raise TypeError(
        f'{type(backbone).__name__} has no stage layout mmmcl knows; '
        f'supported: {SUPPORTED_LAYOUTS}.')
