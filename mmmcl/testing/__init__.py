# The README/docs check (``readme_results``) and the model-zoo table
# (``model_zoo``) are command-line modules: import them by their full name
# (``python -m mmmcl.testing.readme_results``), not from here.
from .cohort_configs import lmcl_model
from .naive_contrast import (naive_bank_block, naive_inbatch_contrast,
                             naive_memory_bank_contrast)
from .train_progress import train_progress

__all__ = [
    'lmcl_model', 'naive_bank_block', 'naive_inbatch_contrast',
    'naive_memory_bank_contrast', 'train_progress'
]
