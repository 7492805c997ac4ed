"""Indexing of the (net, stage) x (net, stage) blocks of a cohort."""
from typing import List, Sequence, Tuple

import torch

Block = Tuple[int, int, int, int]


def cohort_blocks(num_stages: Sequence[int]) -> List[Block]:
    """All ordered blocks ``(i, k, j, z)`` of a cohort, in the paper's order.

    Net ``i`` outermost, then net ``j != i``, then stage ``k`` of ``i``, then
    stage ``z`` of ``j``. M = 2 members with S = 3 stages give 18 blocks.

    Args:
        num_stages (Sequence[int]): Number of stages S_m of each member.

    Returns:
        list[tuple]: ``(i, k, j, z)`` per block.
    """
    blocks = []
    for i, s_i in enumerate(num_stages):
        for j, s_j in enumerate(num_stages):
            if i == j:
                continue
            for k in range(s_i):
                for z in range(s_j):
                    blocks.append((i, k, j, z))
    return blocks


def group_offsets(num_stages: Sequence[int]) -> List[int]:
    """Flat index of the first (net, stage) group of each net."""
    offsets, total = [], 0
    for s in num_stages:
        offsets.append(total)
        total += s
    return offsets


def block_group_index(num_stages: Sequence[int],
                      device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Flat group indices ``(g, h)`` of the two sides of every block.

    Group ``g`` numbers (net, stage) pairs net-major: ``offsets[i] + k``.

    Returns:
        tuple[Tensor, Tensor]: ``g`` and ``h``, each of shape (num_blocks, ).
    """
    offsets = group_offsets(num_stages)
    blocks = cohort_blocks(num_stages)
    g = torch.tensor([offsets[i] + k for i, k, _, _ in blocks],
                     dtype=torch.long, device=device)
    h = torch.tensor([offsets[j] + z for _, _, j, z in blocks],
                     dtype=torch.long, device=device)
    return g, h
