"""Run under torchrun by tests/test_train.py: two CPU processes (gloo) train one model with DDP."""

import sys

import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from lumbarlab.train import distributed_setup, fit

rank, world = distributed_setup()
g = torch.Generator().manual_seed(0)
x = torch.randn(64, 4, generator=g)
y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
ds = TensorDataset(x, y)
loader = DataLoader(ds, batch_size=8, sampler=DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=0))
net = torch.nn.Linear(4, 1)
fit(net, loader, lambda out, t: torch.nn.functional.mse_loss(out.squeeze(1), t), epochs=3, lr=0.05, progress=False)
torch.save(net.state_dict(), f"{sys.argv[1]}/rank{rank}.pt")
