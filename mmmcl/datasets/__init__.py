from . import samplers, transforms
from .contrast_index_dataset import ContrastIndexDataset
from .mnist5k import MNIST5k
from .mnist_canvas import mnist_canvas_pool, prepare_mnist_canvas
from .samplers import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403
from .unverified_cifar100 import UnverifiedCIFAR100

# The canvas datasets of the transfer configs import mmdet and mmseg: they
# are in `mmmcl.datasets.transfer`, imported by those configs only.
__all__ = [
    'ContrastIndexDataset', 'MNIST5k', 'mnist_canvas_pool',
    'prepare_mnist_canvas', 'UnverifiedCIFAR100'
] + samplers.__all__ + transforms.__all__
