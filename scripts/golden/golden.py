#!/usr/bin/env python3
"""Golden fixtures: what PyTorch computes for every model the runtime trains.

For each model this builds the PyTorch module (torchvision's for the
ResNets, MobileNetV2 and ShuffleNetV2; FedScale's own LogisticRegression
and LinearSVM for "lr" and "svm"; equivalents of this repository's
logistic, mlp and lenet5), sets every state_dict entry from a
deterministic generator, trains 3 SGD steps on one batch (once plain,
once with a FedProx term; and 1 step alone) and evaluates, and writes the
results to runtime/model/cpu/testdata/golden/<model>.json.
runtime/model/cpu's golden_test.go replays the same computation in Go and
compares; internal/golden reads the files (its comment describes them).

Every result comes with its noise: the largest distance from the same
computation in float64 and in float32 with every layer's output and
gradient jittered by one ulp. With a batch of 4, the deep batch-norm
models' gradients are so ill-conditioned that rounding alone moves their
later steps by percents; the comparisons scale their tolerances by it.
PyTorch runs on one thread with ATen's scalar kernels and without oneDNN,
so that the fixtures do not depend on the CPU making them.

The generator, the dropout masks and the optimizer follow the shared
contract that the Go side implements too (see golden_test.go):

  splitmix64(x): x += 0x9e3779b97f4a7c15;
                 x = (x ^ (x>>30)) * 0xbf58476d1ce4e5b9;
                 x = (x ^ (x>>27)) * 0x94d049bb133111eb; return x ^ (x>>31)
  g(key, i) = float32(((splitmix64(key+i) >> 40) / 2^24) * 2 - 1)
  state_dict entry j uses key (7<<32) + (j<<20); the training batch
  (1000<<20) and the evaluation batch (1001<<20) likewise.

Needs python3, torch, torchvision and numpy only (Debian bookworm:
python3-torch 1.13, python3-torchvision 0.14). Usage:

  golden.py [--out DIR] [MODEL...]
"""

import argparse
import json
import math
import os
import sys

# Portable kernels, so that the fixtures do not depend on the CPU that
# makes them: ATen's scalar (non-vectorised) kernels, and no oneDNN, whose
# kernels and blocking follow the CPU's ISA and caches; convolutions and
# linear layers then run on the (reference) BLAS. Set before torch loads.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

# The shared contract's parameters.
FIXTURE_SEED = 7
DROPOUT_SEED = 11
N = 4
STEPS = 3
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
MUS = (0.0, 0.01)
# (mu, steps) of each recorded run: the contract's two 3-step runs, and one
# step alone, whose state is far better conditioned than the third step's
# in the deep batch-norm models.
RUNS = [(mu, STEPS) for mu in MUS] + [(0.0, 1)]
TRAIN_BATCH_ID = 1000
EVAL_BATCH_ID = 1001
SAMPLES = 64  # values recorded per state entry after training
INITIAL_SAMPLES = 8  # and of the generated initial state (a check on the generator)

MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------- generator

def splitmix64(x):
    """splitmix64 over a numpy uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def gen(key, n):
    """g(key, i) for i < n as float64 values (each exact in float32)."""
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64)
        h = splitmix64(np.uint64(key & MASK64) + i)
    top = (h >> np.uint64(40)).astype(np.float64)
    return top / 16777216.0 * 2.0 - 1.0


def entry_key(j):
    return ((FIXTURE_SEED << 32) + (j << 20)) & MASK64


def entry_values(j, name, shape):
    """The contract's value of state_dict entry j, as a float32 array."""
    n = int(np.prod(shape)) if len(shape) else 1
    if name.endswith("num_batches_tracked"):
        return np.zeros(n, dtype=np.float32)
    v = gen(entry_key(j), n)
    if len(shape) >= 2:
        out = v / math.sqrt(float(np.prod(shape[1:])))
    elif name.endswith("running_mean"):
        out = 0.1 * v
    elif name.endswith("running_var"):
        out = 1.0 + 0.25 * v
    elif name.endswith("weight"):  # batch norm weights
        out = 1.0 + 0.25 * v
    elif name.endswith("bias"):
        out = 0.1 * v
    else:
        raise ValueError(f"no generator rule for state entry {name} {shape}")
    return out.astype(np.float32)


def batch(batch_id, shape, classes, a, b):
    """x: N*C*H*W values of g; y[n] = (a*n + b) % classes."""
    key = entry_key(batch_id)
    x = gen(key, N * int(np.prod(shape))).astype(np.float32).reshape((N,) + tuple(shape))
    y = np.array([(a * n + b) % classes for n in range(N)], dtype=np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def set_state(model):
    sd = model.state_dict()
    new = {}
    for j, (name, t) in enumerate(sd.items()):
        vals = entry_values(j, name, tuple(t.shape))
        new[name] = torch.from_numpy(vals.reshape(tuple(t.shape))).to(t.dtype)
    model.load_state_dict(new)


# ------------------------------------------------------------------ dropout

class SeededDropout(nn.Module):
    """Dropout with the contract's deterministic mask: element i (sample *
    features + feature) of dropout layer `layer` at training step `step` is
    kept iff u >= p, u = float32(h>>40) / 2^24, h = splitmix64(seed ^
    (step<<48) ^ (layer<<40) ^ i); kept values are scaled by 1/(1-p), as
    torch's own dropout scales them. Identity in eval mode."""

    def __init__(self, p, layer, seed):
        super().__init__()
        self.p, self.layer, self.seed = p, layer, seed
        self.step = 0

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        n = x.numel()
        base = (self.seed ^ (self.step << 48) ^ (self.layer << 40)) & MASK64
        with np.errstate(over="ignore"):
            h = splitmix64(np.uint64(base) ^ np.arange(n, dtype=np.uint64))
        u = (h >> np.uint64(40)).astype(np.float32) / np.float32(16777216.0)
        keep = u >= np.float32(self.p)
        # torch computes its mask as bernoulli(1-p) / (1-p) in the input's
        # dtype; do the same so kept values match bit for bit.
        scale = torch.tensor(1.0, dtype=x.dtype) / torch.tensor(1.0 - self.p, dtype=x.dtype)
        m = torch.from_numpy(keep.reshape(tuple(x.shape))).to(x.dtype) * scale
        return x * m

    def extra_repr(self):
        return f"p={self.p}, layer={self.layer}, seed={self.seed}"


# ------------------------------------------------------------------- models

class Logistic(nn.Module):
    """runtime/model's "logistic": fc over the flattened input."""

    def __init__(self, in_dim, classes):
        super().__init__()
        self.fc = nn.Linear(in_dim, classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


class MLP(nn.Module):
    """runtime/model's "mlp" (FedAvg's 2NN): fc1-relu-fc2-relu-fc3, 200 wide."""

    def __init__(self, in_dim, classes, hidden=200):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNet5(nn.Module):
    """runtime/model's "lenet5": conv1 5x5 pad 2 (6) - relu - maxpool 2 -
    conv2 5x5 (16) - relu - maxpool 2 - fc1 120 - relu - fc2 84 - relu - fc3."""

    def __init__(self, channels, h, w, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        fh = ((h + 4 - 4) // 2 - 4) // 2
        fw = ((w + 4 - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * fh * fw, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LogisticRegression(nn.Module):
    """FedScale's "lr" (fedscale/utils/models/simple/models.py), verbatim in
    structure: x.reshape(-1, input_dim) then one Linear named `linear`."""

    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.linear = nn.Linear(input_dim, output_dim)
        self.input_dim = input_dim

    def forward(self, x):
        x = x.reshape(-1, self.input_dim)
        return self.linear(x)


class LinearSVM(nn.Module):
    """FedScale's "svm" (same file): x.reshape(-1, input_dim) then one Linear
    named `fc`; FedScale trains it with the same cross-entropy as every cv
    model (no hinge loss)."""

    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.fc = nn.Linear(input_dim, output_dim)
        self.input_dim = input_dim

    def forward(self, x):
        x = x.reshape(-1, self.input_dim)
        return self.fc(x)


def mobilenet_v2(classes):
    m = torchvision.models.mobilenet_v2(num_classes=classes)
    assert isinstance(m.classifier[0], nn.Dropout), m.classifier
    m.classifier[0] = SeededDropout(m.classifier[0].p, layer=0, seed=DROPOUT_SEED)
    return m


GREY = (1, 28, 28)
RGB = (3, 32, 32)

# name -> (input shape, classes, builder(shape, classes))
MODELS = {
    "logistic": (GREY, 10, lambda s, k: Logistic(int(np.prod(s)), k)),
    "mlp": (GREY, 10, lambda s, k: MLP(int(np.prod(s)), k)),
    "lenet5": (GREY, 10, lambda s, k: LeNet5(s[0], s[1], s[2], k)),
    "lr": (GREY, 10, lambda s, k: LogisticRegression(int(np.prod(s)), k)),
    "svm": (GREY, 10, lambda s, k: LinearSVM(int(np.prod(s)), k)),
    "resnet18": (RGB, 62, lambda s, k: torchvision.models.resnet18(num_classes=k)),
    "resnet34": (RGB, 10, lambda s, k: torchvision.models.resnet34(num_classes=k)),
    "resnet50": (RGB, 10, lambda s, k: torchvision.models.resnet50(num_classes=k)),
    "mobilenet_v2": (RGB, 10, lambda s, k: mobilenet_v2(k)),
    "shufflenet_v2_x0_5": (RGB, 10, lambda s, k: torchvision.models.shufflenet_v2_x0_5(num_classes=k)),
    "shufflenet_v2_x1_0": (RGB, 10, lambda s, k: torchvision.models.shufflenet_v2_x1_0(num_classes=k)),
    "shufflenet_v2_x1_5": (RGB, 10, lambda s, k: torchvision.models.shufflenet_v2_x1_5(num_classes=k)),
    "shufflenet_v2_x2_0": (RGB, 10, lambda s, k: torchvision.models.shufflenet_v2_x2_0(num_classes=k)),
}


# ---------------------------------------------------------------- recording

def f32(v):
    """A float32 value as the shortest decimal that reads back to it."""
    return float(str(np.float32(v)))


def sample_index(n, k=SAMPLES):
    """Every index when n <= k, else round(i*(n-1)/(k-1)) for i < k, with
    halves rounded up: (2*i*(n-1) + k-1) // (2*(k-1)) in integers."""
    if n <= k:
        return list(range(n))
    return [(2 * i * (n - 1) + k - 1) // (2 * (k - 1)) for i in range(k)]


def flat(t):
    return t.detach().cpu().to(torch.float64).numpy().reshape(-1)


def summarize(sd, k=SAMPLES, noise=None):
    """Per state entry: count, sum and sum of squares (float64), and the
    values at sample_index(count, k). With noise (the states the noise
    ensemble ended with), "dev" holds the largest distance from those of
    the sum, of the sum of squares, and of any sampled value."""
    out = []
    for name, t in sd.items():
        a = flat(t)
        idx = sample_index(a.size, k)
        e = {
            "name": name,
            "shape": list(t.shape),
            "count": int(a.size),
            "sum": float(a.sum()),
            "sumsq": float((a * a).sum()),
            "values": [f32(a[i]) for i in idx],
        }
        if noise is not None:
            dev = [0.0, 0.0, 0.0]
            for other in noise:
                b = flat(other[name])
                dev[0] = max(dev[0], float(abs(a.sum() - b.sum())))
                dev[1] = max(dev[1], float(abs((a * a).sum() - (b * b).sum())))
                dev[2] = max(dev[2], float(max(abs(a[i] - b[i]) for i in idx)))
            e["dev"] = dev
        out.append(e)
    return out


def evaluate(model, x, y, classes):
    """top1/top5 (ties to the lower class) and the summed cross-entropy of
    the logits (taken in float64), plus the logits themselves."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
    z = logits.to(torch.float64)
    loss_sum = float(F.cross_entropy(z, y, reduction="sum"))
    z = z.numpy()
    k = min(5, classes)
    top1 = top5 = 0
    for n in range(z.shape[0]):
        lbl = int(y[n])
        zy = z[n, lbl]
        if zy != zy:
            continue
        rank = sum(1 for j in range(classes) if z[n, j] > zy or (z[n, j] == zy and j < lbl))
        top1 += rank < 1
        top5 += rank < k
    return {"top1": top1, "top5": top5, "loss_sum": loss_sum, "logits": [f32(v) for v in z.reshape(-1)]}


def dropouts(model):
    return [m for m in model.modules() if isinstance(m, SeededDropout)]


def train(model, x, y, mu, steps):
    """steps SGD steps on (x, y); returns the cross-entropy measured before
    each step. FedProx adds mu/2 * sum ||w - w0||^2 to the loss it
    differentiates (not to the loss it reports)."""
    params = list(model.parameters())
    anchor = [p.detach().clone() for p in params]
    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    losses = []
    for step in range(steps):
        model.train()
        for d in dropouts(model):
            d.step = step
        ce = F.cross_entropy(model(x), y)
        losses.append(ce.item())
        loss = ce
        if mu > 0:
            prox = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
            loss = ce + mu / 2 * prox
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


class Jitter(torch.autograd.Function):
    """Multiplies each element by 1 +- 2^-23 (one float32 ulp at 1, sign
    drawn from gen) going forward, and its gradient likewise going back:
    rounding as another float32 implementation might do it."""

    @staticmethod
    def forward(ctx, x, gen):
        ctx.gen = gen
        return x * _ulp_noise(x, gen)

    @staticmethod
    def backward(ctx, g):
        return g * _ulp_noise(g, ctx.gen), None


def _ulp_noise(t, gen):
    sign = torch.randint(0, 2, t.shape, generator=gen).to(t.dtype) * 2 - 1
    return 1 + sign * 2.0 ** -23


def jitter(model, seed):
    """Jitters every leaf module's output (and gradient) with seed."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if next(m.children(), None) is None:
            m.register_forward_hook(lambda mod, inp, out: Jitter.apply(out, gen))


class Run:
    """One model in one dtype (optionally jittered): the generated state,
    both batches, and what training and evaluation give."""

    def __init__(self, name, dtype, jitter_seed=None):
        shape, classes, build = MODELS[name]
        self.shape, self.classes = shape, classes
        torch.manual_seed(0)  # torchvision's init is overwritten; fix it anyway
        model = build(shape, classes)
        set_state(model)
        self.model = model.to(dtype)
        if jitter_seed is not None:
            jitter(self.model, jitter_seed)
        self.initial = {k: v.clone() for k, v in self.model.state_dict().items()}
        x, y = batch(TRAIN_BATCH_ID, shape, classes, 7, 3)
        xe, ye = batch(EVAL_BATCH_ID, shape, classes, 5, 1)
        self.x, self.y, self.xe, self.ye = x.to(dtype), y, xe.to(dtype), ye

    def evaluate(self):
        return evaluate(self.model, self.xe, self.ye, self.classes)

    def train(self, mu, steps):
        self.model.load_state_dict(self.initial)
        losses = train(self.model, self.x, self.y, mu, steps)
        return losses, self.evaluate(), {k: v.clone() for k, v in self.model.state_dict().items()}


# The noise ensemble: the same computation in float64, and in float32 with
# every layer's output and gradient jittered by one ulp (JITTER_SEEDS).
JITTER_SEEDS = (1, 2, 3)
NOISE_RUNS = ["float64"] + [f"float32 jittered (seed {s})" for s in JITTER_SEEDS]


def kernels():
    """The kernel settings the results depend on."""
    return (f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', '')} "
            f"mkldnn={'on' if torch.backends.mkldnn.enabled else 'off'} threads={torch.get_num_threads()}")


def noise_eval(e):
    return {k: v for k, v in e.items() if k != "logits"}


def fixture(name):
    r = Run(name, torch.float32)
    noise = [Run(name, torch.float64)] + [Run(name, torch.float32, s) for s in JITTER_SEEDS]
    x, y, xe, ye = r.x, r.y, r.xe, r.ye
    doc = {
        "model": name,
        "input": list(r.shape),
        "classes": r.classes,
        "n": N,
        "steps": STEPS,
        "lr": LR,
        "momentum": MOMENTUM,
        "weight_decay": WEIGHT_DECAY,
        "fixture_seed": FIXTURE_SEED,
        "dropout_seed": DROPOUT_SEED,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "kernels": kernels(),
        "noise_runs": NOISE_RUNS,
        "train_batch": {"x_sum": float(x.double().sum()), "x_sumsq": float((x.double() ** 2).sum()),
                        "y": [int(v) for v in y]},
        "eval_batch": {"x_sum": float(xe.double().sum()), "x_sumsq": float((xe.double() ** 2).sum()),
                       "y": [int(v) for v in ye]},
        "initial": summarize(r.initial, k=INITIAL_SAMPLES),
        "initial_eval": r.evaluate(),
        "initial_eval_noise": [noise_eval(n.evaluate()) for n in noise],
        "runs": [],
    }
    for mu, steps in RUNS:
        losses, ev, state = r.train(mu, steps)
        others = [n.train(mu, steps) for n in noise]
        doc["runs"].append({
            "mu": mu,
            "steps": steps,
            "losses": [f32(v) for v in losses],
            "losses_noise": [o[0] for o in others],
            "eval": ev,
            "eval_noise": [noise_eval(o[1]) for o in others],
            "final": summarize(state, noise=[o[2] for o in others]),
        })
    return doc


def dump(doc):
    """JSON with one line per state entry: compact, but diffable."""
    def line(v):
        return json.dumps(v, separators=(",", ":"), allow_nan=False)

    parts = []
    for k, v in doc.items():
        if k == "initial":
            body = ",\n".join("  " + line(e) for e in v)
            parts.append(f'"{k}":[\n{body}\n ]')
        elif k == "runs":
            runs = []
            for r in v:
                head = ",\n   ".join(f'"{rk}":{line(rv)}' for rk, rv in r.items() if rk != "final")
                body = ",\n".join("   " + line(e) for e in r["final"])
                runs.append(f'  {{{head},\n   "final":[\n{body}\n  ]}}')
            parts.append(f'"{k}":[\n' + ",\n".join(runs) + "\n ]")
        else:
            parts.append(f'"{k}":{line(v)}')
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "runtime", "model", "cpu", "testdata", "golden")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=default_out, help="directory for <model>.json")
    ap.add_argument("models", nargs="*", help="models to write (default: all)")
    args = ap.parse_args()
    names = args.models or list(MODELS)
    for n in names:
        if n not in MODELS:
            sys.exit(f"golden.py: unknown model {n!r} (known: {', '.join(MODELS)})")

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.backends.mkldnn.enabled = False
    torch.set_default_dtype(torch.float32)
    os.makedirs(args.out, exist_ok=True)
    for n in names:
        text = dump(fixture(n))
        json.loads(text)  # the writer above must produce valid JSON
        path = os.path.join(args.out, n + ".json")
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        print(f"golden.py: wrote {os.path.relpath(path)}", file=sys.stderr)


if __name__ == "__main__":
    main()
