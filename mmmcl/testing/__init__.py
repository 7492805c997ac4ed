from .naive_contrast import naive_inbatch_contrast

__all__ = ['naive_inbatch_contrast']
