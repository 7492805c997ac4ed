# MNIST-5k with few labels: the first 20 training images of each digit,
# batches of 10 digits x 2 images (the reference's m = 2), epochs of 25
# batches (500 images drawn per epoch, however few there are).
_base_ = ['./mnist5k_bs100_balanced.py']
train_dataloader = dict(
    batch_size=20,
    dataset=dict(num_per_class=20),
    batch_sampler=dict(num_per_class=2, num_batches=25))
