from .naive_contrast import (naive_bank_block, naive_inbatch_contrast,
                             naive_memory_bank_contrast)

__all__ = [
    'naive_bank_block', 'naive_inbatch_contrast', 'naive_memory_bank_contrast'
]
