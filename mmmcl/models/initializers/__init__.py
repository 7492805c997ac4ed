from .strict_pretrained_init import StrictPretrainedInit

__all__ = ['StrictPretrainedInit']
