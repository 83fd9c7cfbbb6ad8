#!/usr/bin/env python3
"""A small convolutional model's forward pass on the GPU, for gpu-test.

  torch_conv.py run OUT.pt [ITERATIONS]
      builds the model and its input from fixed seeds, runs the forward
      pass once to warm up, then ITERATIONS times (default 50), and saves
      the output tensor to OUT.pt. Prints one JSON line: the device, the
      mean milliseconds per forward pass, the iterations.
  torch_conv.py compare NATIVE.pt FORWARDED.pt
      prints one JSON line with the largest absolute and relative
      difference between the two outputs, and exits 1 if they differ by
      more than the tolerance.

Run natively, then under `kerf run`, on the same GPU: cuDNN's algorithm
choice is pinned (deterministic, no benchmarking, no TF32), so the two
outputs should agree to float rounding.
"""

import json
import sys
import time

import torch
from torch import nn

# Outputs may differ by a reordered float sum, no more.
TOLERANCE = 1e-4


def model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(64, 10),
    )


def run(out: str, iterations: int) -> None:
    if not torch.cuda.is_available():
        sys.exit("torch_conv: torch.cuda.is_available() is False")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    net = model().cuda().eval()
    x = torch.randn(32, 3, 64, 64, generator=torch.Generator().manual_seed(1)).cuda()
    with torch.no_grad():
        y = net(x)  # warm-up: module loads, cuDNN handles
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iterations):
            y = net(x)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - start) * 1000 / iterations
    torch.save(y.cpu(), out)
    print(json.dumps({"device": torch.cuda.get_device_name(0), "ms_per_forward": round(ms, 4),
                      "iterations": iterations, "torch": torch.__version__,
                      "memory_total": torch.cuda.get_device_properties(0).total_memory}))


def compare(native: str, forwarded: str) -> None:
    a, b = torch.load(native), torch.load(forwarded)
    if a.shape != b.shape:
        print(json.dumps({"ok": False, "shapes": [list(a.shape), list(b.shape)]}))
        sys.exit(1)
    diff = (a - b).abs()
    worst = diff.max().item()
    rel = (diff / a.abs().clamp_min(1e-6)).max().item()
    ok = worst <= TOLERANCE * max(1.0, a.abs().max().item())
    print(json.dumps({"ok": ok, "max_abs_diff": worst, "max_rel_diff": rel, "tolerance": TOLERANCE}))
    if not ok:
        sys.exit(1)


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 50)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
