from .mutual_contrast_term import MutualContrastTerm

__all__ = ['MutualContrastTerm']
