from .auxiliary_branch import AuxiliaryBranch
from .cifar_resnet import CifarResNet
from .cifar_shufflenet_v2 import CifarShuffleNetV2
from .wide_resnet import CifarWideResNet

__all__ = [
    'AuxiliaryBranch', 'CifarResNet', 'CifarWideResNet', 'CifarShuffleNetV2'
]
