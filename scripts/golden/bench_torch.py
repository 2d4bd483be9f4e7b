#!/usr/bin/env python3
"""PyTorch's side of the speed comparison: one training step on one thread.

For each model (torchvision's, as FedScale builds them with num_classes),
times one SGD step at batch 20 of 3x32x32: forward, batch-mean
cross-entropy, backward, and torch.optim.SGD(lr=0.05, momentum=0.9,
weight_decay=5e-4).step(). After warm-up steps it reports the median of
the timed steps, and the process's peak RSS right after the models listed
first (resnet18 by default) have been trained, as JSON on stdout:

  {"torch": "1.13.0a0", "threads": 1, "batch": 20, "steps": 10,
   "seconds": {"resnet18": 0.5, ...}, "peak_rss_mib_after_resnet18": 300.1}

Needs python3, torch and torchvision only. Usage:

  bench_torch.py [--steps N] [--warmup N] [MODEL...]
"""

import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

BATCH = 20
CLASSES = {"resnet18": 62, "mobilenet_v2": 10, "shufflenet_v2_x2_0": 10}


def peak_rss_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(name, steps, warmup):
    classes = CLASSES[name]
    torch.manual_seed(0)
    model = torchvision.models.__dict__[name](num_classes=classes)
    model.train()
    x = torch.randn(BATCH, 3, 32, 32)
    y = torch.randint(0, classes, (BATCH,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per model (median taken)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("models", nargs="*", default=list(CLASSES))
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0:
        sys.exit("bench_torch.py: --steps must be at least 1, --warmup at least 0")
    torch.set_num_threads(1)
    out = {"torch": torch.__version__, "torchvision": torchvision.__version__,
           "threads": torch.get_num_threads(), "batch": BATCH, "steps": args.steps, "seconds": {}}
    for i, name in enumerate(args.models):
        if name not in torchvision.models.__dict__ or name not in CLASSES:
            sys.exit(f"bench_torch.py: unknown model {name!r} (known: {', '.join(CLASSES)})")
        out["seconds"][name] = bench(name, args.steps, args.warmup)
        if i == 0:
            out[f"peak_rss_mib_after_{name}"] = round(peak_rss_mib(), 1)
        print(f"bench_torch.py: {name}: {out['seconds'][name]:.4f} s/step", file=sys.stderr)
    out["peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
