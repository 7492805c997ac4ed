from .inbatch_contrast_loss import InBatchContrastLoss
from .memory_bank_contrast_loss import MemoryBankContrastLoss

__all__ = ['InBatchContrastLoss', 'MemoryBankContrastLoss']
