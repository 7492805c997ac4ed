from .cohort_blocks import (block_group_index, cohort_blocks,
                            group_offsets)
from .stage_layers import stage_layers

__all__ = [
    'cohort_blocks', 'group_offsets', 'block_group_index', 'stage_layers'
]
