from .cohort_distiller import CohortDistiller
from .cohort_teachers import CohortTeachers
from .interfaces import (BankRowsModel, CohortPeers, CohortTerm,
                         ContrastLoss, DistributedStepModel, MatchingWeights,
                         MatchingWeightsModel, MetaModuleModel,
                         NumClassesModel, missing_members, require)
from .legacy import map_legacy_keys, upgrade_losses, upgrade_model_cfg
from .logit_distillation import LogitDistillation
from .meta_problem import cohort_meta_problem
from .meta_step import Hypergradient, MetaProblem, MetaStep

__all__ = [
    'BankRowsModel', 'CohortDistiller', 'CohortPeers', 'CohortTeachers',
    'CohortTerm', 'ContrastLoss', 'LogitDistillation',
    'DistributedStepModel', 'Hypergradient', 'MatchingWeights',
    'MatchingWeightsModel', 'MetaModuleModel', 'MetaProblem', 'MetaStep',
    'NumClassesModel', 'cohort_meta_problem', 'map_legacy_keys',
    'missing_members', 'require',
    'upgrade_losses', 'upgrade_model_cfg'
]
