from .naive_contrast import (naive_bank_block, naive_inbatch_contrast,
                             naive_memory_bank_contrast)
from .readme_results import (ResultBlock, check_readmes, check_result_block,
                             find_result_blocks, readme_files)

__all__ = [
    'naive_bank_block', 'naive_inbatch_contrast', 'naive_memory_bank_contrast',
    'ResultBlock', 'check_readmes', 'check_result_block', 'find_result_blocks',
    'readme_files'
]
