"""The PyTorch side of minima's benchmark against PyTorch (benches/compare.rs).

The same work as minima's training loop (src/train/run.rs `train_step`), written as
a careful PyTorch user would: the data set held in memory as uint8 tensors, each
batch gathered by index, scaled to [0, 1], augmented on whole batches (the same
zero-pad + random crop + horizontal flip as src/data/augment.rs), normalised per
channel, forward in train mode, F.cross_entropy, backward, torch.optim.SGD; running
loss and accuracy summed on the device with no .item() per batch. Evaluation runs
in eval mode under torch.no_grad(). Models come from tests/python/minima_models.py,
whose modules have minima's parameter names and draw minima's initial weights.

Usage:
  reference.py worker     JSON commands on stdin, one JSON answer per line on stdout
  reference.py startup SPEC_JSON ROOT
                          process start to the end of the first training epoch of
                          one step (load, model, step, evaluation), as
                          benches/compare.rs's minima script does
  reference.py check DIR  the identical-work check: DIR holds minima's export
"""

import gzip
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))
import minima_models  # noqa: E402

EVAL_BATCH = 1024  # minima's metrics::evaluate::EVAL_BATCH
CROP_PAD = 4  # minima's Augmentation::CropFlip { pad: 4 } for image data sets


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    t = torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8)
    return t.view(shape)


def fashion_mnist(root, pad=2):
    """uint8 [N, 1, 28 + 2 pad, 28 + 2 pad] images and int64 labels, both splits."""

    def images(name):
        x = read_idx(os.path.join(root, name)).unsqueeze(1)
        return F.pad(x, [pad] * 4) if pad else x

    def labels(name):
        return read_idx(os.path.join(root, name)).long()

    train = images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz")
    test = images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz")
    return train, test


def channel_stats(x):
    """Per-channel mean and (population) std of uint8 pixels scaled to [0, 1]."""
    v = x.double().div(255).transpose(0, 1).flatten(1)
    return v.mean(1).float(), v.std(1, unbiased=False).float()


def crop_flip(x, pad):
    """src/data/augment.rs crop_flip: torchvision's RandomCrop(padding) +
    RandomHorizontalFlip on a whole batch."""
    b, c, h, w = x.shape
    d = x.device
    padded = F.pad(x, [pad] * 4)
    rows = torch.randint(2 * pad + 1, (b, 1), device=d) + torch.arange(h, device=d).view(1, h)
    cols = torch.randint(2 * pad + 1, (b, 1), device=d) + torch.arange(w, device=d).view(1, w)
    out = padded.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * pad))
    out = out.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))
    flip = torch.rand(b, 1, 1, 1, device=d) < 0.5
    return torch.where(flip, out.flip(3), out)


class Bench:
    def __init__(self, spec, root, device="cpu", autocast=False, channels_last=False):
        (x, y), (tx, ty) = fashion_mnist(root)
        mean, std = channel_stats(x)
        self.x, self.y, self.tx, self.ty = (t.to(device) for t in (x, y, tx, ty))
        self.mean, self.std = mean.view(1, -1, 1, 1).to(device), std.view(1, -1, 1, 1).to(device)
        self.device = torch.device(device)
        # minima's precision "bf16" is tch's autocast, whose CUDA dtype is the
        # default, float16: the same here so both sides do the same work.
        self.autocast = autocast
        torch.manual_seed(spec["seed"])
        self.model = minima_models.build(spec).to(device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.order = torch.randperm(len(self.y), device=device)
        self.cursor = 0
        self.optimizers = {}

    def params(self):
        return sum(p.numel() for p in self.model.parameters())

    def optimizer(self, sota):
        if sota not in self.optimizers:
            extra = dict(momentum=0.9, weight_decay=5e-4) if sota else {}
            self.optimizers[sota] = torch.optim.SGD(self.model.parameters(), lr=0.1, **extra)
        return self.optimizers[sota]

    def inputs(self, x, augment):
        x = x.float().div_(255)
        if augment:
            x = crop_flip(x, CROP_PAD)
        return (x - self.mean) / self.std

    def train(self, steps, sota, batch=128):
        opt = self.optimizer(sota)
        self.model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        start = time.perf_counter()
        for _ in range(steps):
            if self.cursor + batch > len(self.order):
                self.cursor = 0
            idx = self.order[self.cursor : self.cursor + batch]
            self.cursor += batch
            x, y = self.inputs(self.x[idx], sota), self.y[idx]
            opt.zero_grad()
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.autocast):
                out = self.model(x)
                loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * len(y)
            correct += (out.detach().argmax(-1) == y).sum()
        total = float(loss_sum)  # the one host read, as minima's epoch end
        return {"seconds": time.perf_counter() - start, "images": steps * batch, "loss": total}

    def evaluate(self, n):
        self.model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            correct = torch.zeros((), dtype=torch.int64, device=self.device)
            for s in range(0, n, EVAL_BATCH):
                e = min(n, s + EVAL_BATCH)
                x, y = self.inputs(self.tx[s:e], False), self.ty[s:e]
                out = self.model(x)
                loss_sum += F.cross_entropy(out, y, reduction="sum").double()
                correct += (out.argmax(-1) == y).sum()
            float(loss_sum)
        return {"seconds": time.perf_counter() - start, "images": n}


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker():
    bench = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["cmd"]
        if op == "setup":
            torch.set_num_threads(cmd["threads"])
            bench = Bench(
                cmd["spec"],
                cmd["root"],
                cmd.get("device", "cpu"),
                cmd.get("autocast", False),
                cmd.get("channels_last", False),
            )
            answer = {"params": bench.params()}
        elif op == "train":
            answer = bench.train(cmd["steps"], cmd["sota"])
        elif op == "eval":
            answer = bench.evaluate(cmd["images"])
        elif op == "rss":
            answer = {"peak_rss_mb": peak_rss_mb()}
        else:
            answer = {"error": f"unknown command {op}"}
        print(json.dumps(answer), flush=True)


def startup(spec_json, root):
    """Mirror of the minima start-up script: full data set, a stratified-size subset
    of one batch, the model, one epoch of one step, then the epoch's evaluation of
    both splits (minima evaluates at the end of every epoch)."""
    torch.set_num_threads(int(os.environ.get("MINIMA_BENCH_THREADS", "2")))
    spec = json.loads(spec_json)
    (x, y), (tx, ty) = fashion_mnist(root)
    mean, std = channel_stats(x)
    mean, std = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)
    torch.manual_seed(0)
    idx = torch.randperm(len(y))[:128]
    x, y = x[idx], y[idx]
    torch.manual_seed(spec["seed"])
    model = minima_models.build(spec)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    opt.zero_grad()
    loss = F.cross_entropy(model(((x.float() / 255) - mean) / std), y)
    loss.backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        for xs, ys in ((x, y), (tx, ty)):
            for s in range(0, len(ys), EVAL_BATCH):
                out = model(((xs[s : s + EVAL_BATCH].float() / 255) - mean) / std)
                F.cross_entropy(out, ys[s : s + EVAL_BATCH], reduction="sum")
    print("first-step", flush=True)


def run_case(spec, init, data, case, dtype):
    """minima's steps of one check case in `dtype`: parameter count, the loss of
    each step, the eval-mode loss after them."""
    from safetensors.torch import load_file

    model = minima_models.build(spec)
    model.load_state_dict(load_file(str(init)), strict=True)
    model = model.to(dtype)
    x, y, order = data["x"], data["y"], data["order"]
    mean = data["mean"].view(1, -1, 1, 1).to(dtype)
    std = data["std"].view(1, -1, 1, 1).to(dtype)
    opt = torch.optim.SGD(
        model.parameters(), lr=case["lr"], momentum=case["momentum"], weight_decay=case["weight_decay"]
    )
    model.train()
    losses = []
    batch = case["batch"]
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        opt.zero_grad()
        loss = F.cross_entropy(model(((x[idx].to(dtype) / 255) - mean) / std), y[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        final = F.cross_entropy(model(((x.to(dtype) / 255) - mean) / std), y).item()
    return sum(p.numel() for p in model.parameters()), losses, final


def check(directory):
    """Trains minima's exported init on minima's exported batches, in minima's
    order, with the SGD settings minima used, and reports the losses."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    d = Path(directory)
    torch.set_num_threads(int(os.environ.get("MINIMA_BENCH_THREADS", "2")))
    report = {}
    for case in json.loads((d / "cases.json").read_text()):
        name = case["name"]
        with safe_open(str(d / f"{name}.init.safetensors"), "pt") as f:
            spec = json.loads(f.metadata()[minima_models.SPEC_KEY])
        data = load_file(str(d / f"{name}.data.safetensors"))
        # float32 as a user runs it; float64 as the yardstick both float32 runs
        # are measured against (their kernels may round differently).
        runs = {kind: run_case(spec, d / f"{name}.init.safetensors", data, case, kind)
                for kind in (torch.float32, torch.float64)}
        params, losses, final = runs[torch.float32]
        _, losses64, final64 = runs[torch.float64]
        report[name] = {
            "params": params,
            "step_losses": losses,
            "final_loss": final,
            "step_losses_f64": losses64,
            "final_loss_f64": final64,
        }
    (d / "report.json").write_text(json.dumps(report))


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "worker":
        worker()
    elif mode == "startup":
        startup(sys.argv[2], sys.argv[3])
    elif mode == "check":
        check(sys.argv[2])
    else:
        sys.exit(__doc__)
