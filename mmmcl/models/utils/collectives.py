"""Differentiable collectives of the cohort's loss.

They go through ``torch.distributed.nn.functional``, whose collectives are
public and differentiable to any order (the meta step's replay
differentiates through the loss's gather twice). In one process they are
not called.
"""
import warnings
from typing import List

import torch
import torch.distributed.nn.functional as dist_nn
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
