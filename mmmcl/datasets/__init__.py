from . import samplers, transforms
from .contrast_index_dataset import ContrastIndexDataset
from .mnist5k import MNIST5k
from .mnist_canvas import mnist_canvas_pool, prepare_mnist_canvas
from .mnist_canvas_det import MNISTCanvasDetDataset
from .mnist_canvas_seg import MNISTCanvasSegDataset
from .samplers import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403

__all__ = [
    'ContrastIndexDataset', 'MNIST5k', 'MNISTCanvasDetDataset',
    'MNISTCanvasSegDataset', 'mnist_canvas_pool', 'prepare_mnist_canvas'
] + samplers.__all__ + transforms.__all__
