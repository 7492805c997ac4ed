"""Differentiable collectives of the cohort's loss and meta step.

Both go through ``torch.distributed.nn.functional``, whose collectives are
public and differentiable to any order (the meta step differentiates
through them twice). In one process they are not called.
"""
import warnings
from typing import List, Optional, Sequence

import torch
import torch.distributed.nn.functional as dist_nn
from mmengine.dist import get_world_size
from torch import Tensor


def gather_rows(tensor: Tensor, sizes: List[int]) -> Tensor:
    """Every rank's ``tensor`` concatenated along dim 0, in rank order.

    Autograd-aware (``torch.distributed.nn.functional.all_gather``): the
    gradient of the result's rows of rank r, summed over the ranks, flows
    back to rank r's ``tensor``. Rank r holds ``sizes[r]`` rows; shorter
    tensors are padded for the collective.
    """
    pad = max(sizes) - tensor.shape[0]
    if pad:
        tensor = torch.cat([tensor, tensor.new_zeros(pad, *tensor.shape[1:])])
    with warnings.catch_warnings():
        # Deprecated in torch 2.14 for the functional collectives, which are
        # private; this one is public and twice differentiable (meta step).
        warnings.simplefilter('ignore', FutureWarning)
        parts = dist_nn.all_gather(tensor)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


def mean_over_ranks(
        grads: Sequence[Optional[Tensor]]) -> List[Optional[Tensor]]:
    """The mean over the ranks of each gradient, differentiable.

    One all-reduce of the flattened gradients; the ranks agree on which are
    None (unused parameters), as they run the same model.
    """
    present = [g for g in grads if g is not None]
    flat = torch.cat([g.reshape(-1) for g in present])
    with warnings.catch_warnings():
        # Deprecated in torch 2.14 for the functional collectives, which are
        # private; this one is public and differentiable to any order.
        warnings.simplefilter('ignore', FutureWarning)
        flat = dist_nn.all_reduce(flat) / get_world_size()
    parts = iter(flat.split([g.numel() for g in present]))
    return [None if g is None else next(parts).view_as(g) for g in grads]
