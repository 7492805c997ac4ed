from .inbatch_contrast_loss import InBatchContrastLoss

__all__ = ['InBatchContrastLoss']
