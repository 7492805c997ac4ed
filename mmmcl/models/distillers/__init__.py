from .cohort_distiller import CohortDistiller
from .interfaces import (BankRowsModel, ContrastLoss, DistributedStepModel,
                         MatchingWeights, MatchingWeightsModel,
                         MetaModuleModel, NumClassesModel, missing_members,
                         require)
from .meta_step import Hypergradient, MetaProblem, MetaStep
from .online_kd_distiller import OnlineKDDistiller

__all__ = [
    'BankRowsModel', 'CohortDistiller', 'ContrastLoss',
    'DistributedStepModel', 'Hypergradient', 'MatchingWeights',
    'MatchingWeightsModel', 'MetaModuleModel', 'MetaProblem', 'MetaStep',
    'NumClassesModel', 'OnlineKDDistiller', 'missing_members', 'require'
]
