from .cohort_distiller import CohortDistiller
from .interfaces import (BankRowsModel, CohortPeers, CohortTerm,
                         ContrastLoss, DistributedStepModel, MatchingWeights,
                         MatchingWeightsModel, MetaModuleModel,
                         NumClassesModel, missing_members, require)
from .legacy import map_legacy_keys, upgrade_losses, upgrade_model_cfg
from .meta_step import Hypergradient, MetaProblem, MetaStep

__all__ = [
    'BankRowsModel', 'CohortDistiller', 'CohortPeers', 'CohortTerm',
    'ContrastLoss',
    'DistributedStepModel', 'Hypergradient', 'MatchingWeights',
    'MatchingWeightsModel', 'MetaModuleModel', 'MetaProblem', 'MetaStep',
    'NumClassesModel', 'map_legacy_keys', 'missing_members', 'require',
    'upgrade_losses', 'upgrade_model_cfg'
]
