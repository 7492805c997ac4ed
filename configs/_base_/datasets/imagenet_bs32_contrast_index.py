# ImageNet for the memory-bank recipe: every sample also brings its bank
# rows [self, 1 same-class positive, 8192 other-class negatives], drawn
# from the seed and the epoch (ContrastIndexDataset + ContrastIndexHook).
_base_ = ['./imagenet_bs32.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ContrastIndexDataset',
        num_negatives=8192,
        dataset={{_base_.imagenet_train}}))
