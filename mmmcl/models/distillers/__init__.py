from .cohort_distiller import CohortDistiller
from .meta_step import MetaStep

__all__ = ['CohortDistiller', 'MetaStep']
