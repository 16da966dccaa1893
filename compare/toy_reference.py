"""compare/toy.sh's PyTorch side: the work of compare/toy.rhai as an eager loop.

Figure 1's network (Linear 2-100, ReLU, Linear 100-100, ReLU, Linear 100-2) on 100
points from the same two Gaussians, vanilla torch.optim.SGD (lr 0.01) at batch 10,
a fresh permutation per epoch, running loss summed on the device (no .item() per
batch), both splits evaluated under no_grad at the end. Prints images/s.

Usage: toy_reference.py EPOCHS
"""

import sys
import time

import torch
import torch.nn.functional as F

epochs = int(sys.argv[1])
torch.manual_seed(0)


def sample(per_class):
    xs, ys = [], []
    for label, sign in [(0, -1.0), (1, 1.0)]:
        xs.append((torch.randn(per_class, 2) * 1.5 + 2.0) * 0.1 + torch.tensor([sign * 0.65, 0.0]))
        ys.append(torch.full((per_class,), label))
    return torch.cat(xs), torch.cat(ys)


x, y = sample(50)
x_test, y_test = sample(50)
net = torch.nn.Sequential(
    torch.nn.Linear(2, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100), torch.nn.ReLU(), torch.nn.Linear(100, 2)
)
opt = torch.optim.SGD(net.parameters(), lr=0.01)
n = x.shape[0]
start = time.perf_counter()
total = torch.zeros((), dtype=torch.float64)
for epoch in range(epochs):
    order = torch.randperm(n)
    for i in range(0, n, 10):
        idx = order[i : i + 10]
        logits = net(x[idx])
        loss = F.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.detach().double()
with torch.no_grad():
    train_loss = F.cross_entropy(net(x), y).item()
    F.cross_entropy(net(x_test), y_test).item()
seconds = time.perf_counter() - start
print(f"images_per_s {epochs * n / seconds} loss {train_loss}")
