"""The classifiers' initialisation: each part's own, or the references'."""
import torch.nn as nn

HEAD_INITS = ('mmpretrain', 'reference')


def check_head_init(head_init: str) -> str:
    """``head_init`` if it is one of :data:`HEAD_INITS`."""
    if head_init not in HEAD_INITS:
        raise ValueError(f'`model.head_init` must be one of {HEAD_INITS}, '
                         f'got {head_init!r}.')
    return head_init


def pytorch_default_linear(module: nn.Module, weights: bool = True,
                           zero_bias: bool = False) -> None:
    """The reference codes' classifiers: their init loops touch only conv
    and norm layers, so every ``nn.Linear`` keeps PyTorch's default,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.

    Args:
        module (nn.Module): Every ``nn.Linear`` in it is re-initialised.
        weights (bool): Redraw weight and bias (``reset_parameters``).
            Defaults to True.
        zero_bias (bool): Then set the biases to zero. Defaults to False.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            if weights:
                layer.reset_parameters()
            if zero_bias and layer.bias is not None:
                nn.init.zeros_(layer.bias)
