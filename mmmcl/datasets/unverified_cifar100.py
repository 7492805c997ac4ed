from mmpretrain.datasets import CIFAR100

from mmmcl.registry import DATASETS


@DATASETS.register_module()
class UnverifiedCIFAR100(CIFAR100):
    """mmpretrain's ``CIFAR100`` on files whose md5 it does not check.

    mmpretrain refuses CIFAR-100 files that differ from the official
    archive's (its ``train_list``, ``test_list`` and ``meta`` carry their
    md5). This reads the same python layout (``cifar-100-python/{train,
    test,meta}`` pickles under ``data_root``) without that check, and never
    downloads: for a subset or a re-split of CIFAR-100 in that layout, or a
    small copy made for a test. Use it as ``type='UnverifiedCIFAR100'``
    where a config says ``mmpretrain.CIFAR100``; the official files load
    the same either way.

    Args:
        download (bool): Must stay False: there is nothing to download
            that could match these files. Defaults to False.
        **kwargs: The arguments of :class:`mmpretrain.datasets.CIFAR100`.
    """
    train_list = [[name, None] for name, _ in CIFAR100.train_list]
    test_list = [[name, None] for name, _ in CIFAR100.test_list]
    meta = {**CIFAR100.meta, 'md5': None}

    def __init__(self, *args, download: bool = False, **kwargs) -> None:
        if download:
            raise ValueError('UnverifiedCIFAR100 reads local files only: '
                             'set download=False, or use '
                             "type='mmpretrain.CIFAR100' to download the "
                             'official archive.')
        super().__init__(*args, download=False, **kwargs)
