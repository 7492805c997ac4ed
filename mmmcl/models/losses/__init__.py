from .inbatch_contrast_loss import InBatchContrastLoss
from .logit_kd_loss import LogitKDLoss
from .loss_weight_ramp import LossWeightRamp, build_ramps
from .memory_bank_contrast_loss import MemoryBankContrastLoss

__all__ = [
    'InBatchContrastLoss', 'LogitKDLoss', 'LossWeightRamp',
    'MemoryBankContrastLoss', 'build_ramps'
]
