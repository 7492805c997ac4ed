from . import samplers, transforms
from .mnist5k import MNIST5k
from .samplers import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403

__all__ = ['MNIST5k'] + samplers.__all__ + transforms.__all__
