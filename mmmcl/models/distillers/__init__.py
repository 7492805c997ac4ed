from .cohort_distiller import CohortDistiller
from .meta_step import Hypergradient, MetaProblem, MetaStep
from .online_kd_distiller import OnlineKDDistiller

__all__ = [
    'CohortDistiller', 'Hypergradient', 'MetaProblem', 'MetaStep',
    'OnlineKDDistiller'
]
