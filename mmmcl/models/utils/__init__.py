from .batch_augments import RandomCropFlip
from .cohort_blocks import (block_group_index, cohort_blocks,
                            group_offsets)
from .collectives import gather_rows
from .fresh_copies import STAGE_INIT_CFG, fresh_copies
from .head_init import HEAD_INITS, check_head_init, pytorch_default_linear
from .multiview_data_preprocessor import MultiViewDataPreprocessor
from .peer_outputs import PeerOutputs
from .stage_layers import stage_layers
from .train_progress import BATCH_IDX, EPOCH, ITER, loop_progress

__all__ = [
    'cohort_blocks', 'group_offsets', 'block_group_index', 'gather_rows',
    'stage_layers', 'fresh_copies', 'STAGE_INIT_CFG', 'PeerOutputs',
    'HEAD_INITS', 'check_head_init', 'pytorch_default_linear',
    'RandomCropFlip', 'MultiViewDataPreprocessor', 'BATCH_IDX', 'EPOCH',
    'ITER', 'loop_progress'
]
