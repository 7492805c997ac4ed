from .inbatch_contrast_loss import InBatchContrastLoss
from .loss_weight_ramp import LossWeightRamp
from .memory_bank_contrast_loss import MemoryBankContrastLoss

__all__ = ['InBatchContrastLoss', 'LossWeightRamp', 'MemoryBankContrastLoss']
