from .random_crop_flip import RandomCropFlip

__all__ = ['RandomCropFlip']
