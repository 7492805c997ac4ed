from .class_balanced_batch_sampler import ClassBalancedBatchSampler

__all__ = ['ClassBalancedBatchSampler']
