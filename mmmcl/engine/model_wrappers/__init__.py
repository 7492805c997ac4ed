from .cohort_distributed import CohortDistributedDataParallel
from .dist_setup import prepare_distributed

__all__ = ['CohortDistributedDataParallel', 'prepare_distributed']
