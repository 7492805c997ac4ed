from .cifar_resnet import CifarResNet
from .cifar_shufflenet_v2 import CifarShuffleNetV2
from .wide_resnet import CifarWideResNet

__all__ = ['CifarResNet', 'CifarWideResNet', 'CifarShuffleNetV2']
