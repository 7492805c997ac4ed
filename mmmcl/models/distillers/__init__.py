from .cohort_distiller import CohortDistiller
from .meta_step import MetaStep
from .online_kd_distiller import OnlineKDDistiller

__all__ = ['CohortDistiller', 'MetaStep', 'OnlineKDDistiller']
