"""Fresh, re-initialised copies of backbone parts."""
import copy
from typing import Iterable, List

import torch.nn as nn

# How mmpretrain's ResNet initialises the layers that the copies hold.
STAGE_INIT_CFG = (dict(type='Kaiming', layer=['Conv2d']),
                  dict(type='Constant',
                       val=1,
                       layer=['_BatchNorm', 'GroupNorm']))


def fresh_copies(modules: Iterable[nn.Module]) -> List[nn.Module]:
    """Deep copies of ``modules`` whose every layer with
    ``reset_parameters`` is re-drawn, so that no two copies (nor a copy and
    its original) start from the same weights. The owner's ``init_cfg``
    (e.g. :data:`STAGE_INIT_CFG`) then initialises them as the original."""
    copies = [copy.deepcopy(m) for m in modules]
    for module in copies:
        for layer in module.modules():
            if hasattr(layer, 'reset_parameters'):
                layer.reset_parameters()
    return copies
