"""The PyTorch half of tests/pytorch_interop.rs.

Usage: interop.py DIR CASE...

For each CASE, DIR holds (written by the Rust test):
  CASE.init.safetensors    a freshly initialised minima model
  CASE.minima.safetensors  the same model after training-mode forwards (BN statistics moved)
  CASE.input.safetensors   a fixed input batch `x`; `noise`, the batch of the training-mode
                           forwards (`noise`, then `noise * 0.5`); `y_train`, the first one's output
This script writes:
  CASE.torch-out.safetensors      eval-mode outputs of the minima file loaded with strict=True
  CASE.torch.safetensors          a PyTorch-initialised model (seed + 1), BN statistics moved,
                                  saved from state_dict() with minima's metadata
  CASE.torch-ref-out.safetensors  that model's eval-mode outputs on `x`
and DIR/report.json: per case, the state_dict keys in order, whether
torch.manual_seed(seed) + the mirror module reproduces the minima init exactly, and
how far PyTorch's training-mode forwards from the minima init are from minima's
(outputs, and the batch-norm statistics they leave).
"""

import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).parent))
import minima_models  # noqa: E402


def spec_of(path):
    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()[minima_models.SPEC_KEY])


def move_statistics(model, shape, seed):
    """Training-mode forwards so batch-norm buffers hold non-default values."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, *shape, generator=g) * 2 + 0.5)
    model.eval()


def main():
    out = Path(sys.argv[1])
    torch.set_num_threads(2)
    report = {}
    for case in sys.argv[2:]:
        spec = spec_of(out / f"{case}.init.safetensors")
        inputs = load_file(out / f"{case}.input.safetensors")
        x = inputs["x"]

        torch.manual_seed(spec["seed"])
        fresh = minima_models.build(spec)
        init = load_file(out / f"{case}.init.safetensors")
        ours = fresh.state_dict()
        common = [k for k in ours if k in init and ours[k].shape == init[k].shape]
        diff = max(float((ours[k].double() - init[k].double()).abs().max()) for k in common)
        identical = set(ours) == set(init) and len(common) == len(ours) and all(
            torch.equal(ours[k], init[k]) for k in ours
        )

        stepped = minima_models.build(spec)
        stepped.load_state_dict(init, strict=True)
        stepped.train()
        with torch.no_grad():
            y_train = stepped(inputs["noise"])
            stepped(inputs["noise"] * 0.5)
        moved = load_file(out / f"{case}.minima.safetensors")
        after = stepped.state_dict()
        train_diff = max(
            float((after[k].double() - moved[k].double()).abs().max()) for k in after
        )
        train_out_diff = float((y_train - inputs["y_train"]).abs().max())

        loaded = minima_models.build(spec)
        loaded.load_state_dict(load_file(out / f"{case}.minima.safetensors"), strict=True)
        loaded.eval()
        with torch.no_grad():
            save_file({"y": loaded(x).contiguous()}, out / f"{case}.torch-out.safetensors")

        theirs_spec = dict(spec, seed=spec["seed"] + 1)
        torch.manual_seed(theirs_spec["seed"])
        theirs = minima_models.build(theirs_spec)
        move_statistics(theirs, spec["input_shape"], theirs_spec["seed"])
        with torch.no_grad():
            y = theirs(x)
        save_file(theirs.state_dict(), out / f"{case}.torch.safetensors",
                  metadata=minima_models.metadata(theirs_spec))
        save_file({"y": y.contiguous()}, out / f"{case}.torch-ref-out.safetensors")

        report[case] = {
            "keys": list(ours),
            "init_identical": identical,
            "init_max_diff": diff,
            "train_state_max_diff": train_diff,
            "train_output_max_diff": train_out_diff,
            "params": sum(p.numel() for p in fresh.parameters()),
        }
    (out / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
