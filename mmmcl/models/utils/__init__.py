from .cohort_blocks import (block_group_index, cohort_blocks,
                            group_offsets)
from .collectives import gather_rows, mean_over_ranks
from .fresh_copies import STAGE_INIT_CFG, fresh_copies
from .peer_outputs import PeerOutputs
from .stage_layers import stage_layers

__all__ = [
    'cohort_blocks', 'group_offsets', 'block_group_index', 'gather_rows',
    'mean_over_ranks', 'stage_layers', 'fresh_copies', 'STAGE_INIT_CFG',
    'PeerOutputs'
]
