"""Makes torch-sys's generated C wrappers compile against an older libtorch.

compare/gpu-pack.sh builds minima for a GPU machine whose PyTorch is older than
the one tch binds. tch wraps every libtorch operator; the few that the older
version lacks (or declares differently) fail to compile. Each such wrapper's body
becomes a throw, which tch reports as a Rust error if it is ever called; minima
calls none of them. Usage: gpu_stub_ops.py FILE INCLUDE_DIR (repeats until FILE
compiles, at most 5 passes)."""
import re
import subprocess
import sys

path, include = sys.argv[1], sys.argv[2]
for _ in range(5):
    cmd = ["c++", "-std=c++17", "-fsyntax-only", "-w", "-D_GLIBCXX_USE_CXX11_ABI=1",
           "-I", include, "-I", f"{include}/torch/csrc/api/include", path]
    errors = subprocess.run(cmd, capture_output=True, text=True).stderr
    lines = sorted({int(m) for m in re.findall(re.escape(path) + r":(\d+):\d+: error", errors)})
    if not lines:
        sys.exit(0)
    src = open(path).read().split("\n")
    for n in reversed(lines):
        start = n - 1
        while not src[start].startswith("  PROTECT("):
            start -= 1
        end = n - 1
        while src[end] != "  )":
            end += 1
        name = re.search(r"(\w+)\(", src[start - 1]).group(1)
        src[start + 1:end] = [f'    throw std::runtime_error("{name}: not in this libtorch");']
        print(f"stubbed {name}", file=sys.stderr)
    open(path, "w").write("\n".join(src))
sys.exit(f"{path} still fails to compile after 5 passes:\n{errors[-3000:]}")
