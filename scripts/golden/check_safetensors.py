#!/usr/bin/env python3
"""Checks runtime/model/safetensors against PyTorch itself.

The runtime writes the global model as a safetensors file that must load
unchanged with

    torchvision.models.resnet18(num_classes=62).load_state_dict(
        safetensors.torch.load_file(path))

The safetensors package is not in Debian bookworm, so this script reads
and writes the format itself (it is an 8-byte little-endian header length,
a JSON header, and the tensors' raw little-endian bytes), the way the
reference implementation does: tensors ordered by descending dtype then by
name, compact JSON with __metadata__ first, the header padded with spaces to
a multiple of 8 bytes.

Needs python3, numpy, torch and torchvision only (Debian's python3-torch
1.13 and python3-torchvision 0.14). Subcommands:

  names OUT.json        the state_dict names, shapes and dtypes of the model
                        (the Go tests' testdata/resnet18_62.json)
  write OUT             the interop fixture (below) as a safetensors file
  check FILE            load FILE into the model with strict=True and check
                        that every entry arrives with the model's own dtype
                        and shape and unchanged values; --fixture also
                        compares the values with the interop fixture
  roundtrip             the whole check (what make golden-check runs):
                        Python writes the fixture, Go reads it and checks it
                        value for value, Go writes the fixture and must
                        produce the same bytes, and PyTorch loads Go's file;
                        for resnet18 it also loads the runtime's own
                        initialised resnet18 written by Go and the model file
                        an aggregator wrote at the end of a resnet18 job,
                        and fails when testdata/resnet18_62.json drifts

Common options: --model (a torchvision model name, default resnet18),
--num-classes (default 62).

The interop fixture is the golden generator of scripts/golden (the shared
contract): entry j of the state_dict, element i, from
g(key, i) = float32(((splitmix64(key + i) >> 40) / 2^24) * 2 - 1) with
key = (7 << 32) + (j << 20); weights of rank >= 2 are divided by
sqrt(prod(shape[1:])), running means scaled by 0.1, running variances and
1-D weights are 1 + 0.25 g, biases 0.1 g. Unlike the training fixtures,
num_batches_tracked is 1000 + j here, so the int64 path carries a value.
"""

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import torch
import torchvision

# The fixture generator is golden.py's, beside this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = "./runtime/model/safetensors"
NAMES_FILE = os.path.join(REPO, "runtime", "model", "safetensors", "testdata", "resnet18_62.json")


# safetensors dtype name -> (torch dtype, rank in the reference's Dtype enum)
DTYPES = {
    "BOOL": (torch.bool, 0), "U8": (torch.uint8, 1), "I8": (torch.int8, 2),
    "I16": (torch.int16, 5), "F16": (torch.float16, 7), "BF16": (torch.bfloat16, 8),
    "I32": (torch.int32, 9), "F32": (torch.float32, 11), "F64": (torch.float64, 12),
    "I64": (torch.int64, 13),
}
TORCH_TO_ST = {v[0]: k for k, v in DTYPES.items()}


def fail(msg):
    print("check_safetensors: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- format

def save(tensors, path, metadata=None):
    """Writes {name: tensor} as the reference implementation does."""
    items = []
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        dt = TORCH_TO_ST[t.dtype]
        items.append((name, dt, list(t.shape), t))
    items.sort(key=lambda it: (-DTYPES[it[1]][1], it[0].encode("utf-8")))
    header = {}
    if metadata:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    blobs = []
    off = 0
    for name, dt, shape, t in items:
        b = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    """Reads a safetensors file into {name: tensor}, checking its layout as
    the reference does. Returns (tensors in file order, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        fail(f"{path}: too short")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000 or 8 + n > len(data):
        fail(f"{path}: bad header length {n}")
    hb = data[8:8 + n]
    if not hb.startswith(b"{"):
        fail(f"{path}: header does not start with '{{'")
    if (8 + n) % 8 != 0:
        fail(f"{path}: data does not start at a multiple of 8 bytes")

    def no_dups(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            fail(f"{path}: duplicate key in the header")
        return dict(pairs)

    header = json.loads(hb.decode("utf-8"), object_pairs_hook=no_dups)
    meta = header.pop("__metadata__", None)
    buf = data[8 + n:]
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    pos = 0
    out = {}
    for name, info in entries:
        s, e = info["data_offsets"]
        dt, _ = DTYPES[info["dtype"]]
        shape = info["shape"]
        count = math.prod(shape)
        if s != pos or e - s != count * torch.empty((), dtype=dt).element_size():
            fail(f"{path}: tensor {name}: data_offsets {info['data_offsets']} do not tile the buffer")
        pos = e
        if count == 0:
            out[name] = torch.empty(shape, dtype=dt)
        else:
            out[name] = torch.frombuffer(bytearray(buf[s:e]), dtype=dt).reshape(shape)
    if pos != len(buf):
        fail(f"{path}: {len(buf) - pos} bytes after the last tensor")
    return out, meta


# ---------------------------------------------------------------- fixture

def fixture_value(j, name, shape):
    """golden.py's generated value of state_dict entry j, except the batch
    counter, which is 1000 + j here."""
    if name.endswith("num_batches_tracked"):
        return torch.full(shape, 1000 + j, dtype=torch.int64)
    return torch.from_numpy(golden.entry_values(j, name, shape)).reshape(shape)


def build(args):
    torch.manual_seed(0)
    return torchvision.models.__dict__[args.model](num_classes=args.num_classes)


def fixture(model):
    return {name: fixture_value(j, name, list(t.shape)) for j, (name, t) in enumerate(model.state_dict().items())}


# ---------------------------------------------------------------- commands

def names_doc(model, args):
    return {
        "model": args.model,
        "num_classes": args.num_classes,
        "generator": "scripts/golden/check_safetensors.py names (torch %s, torchvision %s)"
        % (torch.__version__.split("+")[0], torchvision.__version__.split("+")[0]),
        "tensors": [
            {"name": k, "shape": list(v.shape), "dtype": TORCH_TO_ST[v.dtype]}
            for k, v in model.state_dict().items()
        ],
    }


def cmd_names(args):
    doc = names_doc(build(args), args)
    rows = ",\n".join("  " + json.dumps(t) for t in doc["tensors"])
    head = json.dumps({k: v for k, v in doc.items() if k != "tensors"}, indent=1)[:-2]
    with open(args.out, "w") as f:
        f.write(head + ',\n "tensors": [\n' + rows + "\n ]\n}\n")
    print(f"wrote {len(doc['tensors'])} entries to {args.out}")


def cmd_write(args):
    save(fixture(build(args)), args.out, {"format": "pt"})
    print(f"wrote the interop fixture to {args.out}")


def check(path, args, want_fixture):
    model = build(args)
    sd, meta = load(path)
    ref = model.state_dict()
    for k, v in sd.items():
        if k in ref and (v.dtype != ref[k].dtype or v.shape != ref[k].shape):
            fail(f"{path}: {k} is {v.dtype} {list(v.shape)}, the model has {ref[k].dtype} {list(ref[k].shape)}")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        fail(f"{path}: load_state_dict(strict=True): {e}")
    after = model.state_dict()
    for k, v in sd.items():
        if not torch.equal(after[k], v):
            fail(f"{path}: {k} changed on loading")
    if want_fixture:
        for k, v in fixture(build(args)).items():
            if not torch.equal(after[k], v):
                diff = (after[k].double() - v.double()).abs().max().item()
                fail(f"{path}: {k} differs from the interop fixture (max |diff| {diff})")
    print(f"ok: {path}: {len(sd)} tensors load into torchvision {args.model}(num_classes={args.num_classes}) "
          f"with strict=True, dtypes and values unchanged{' and equal to the fixture' if want_fixture else ''} (metadata {meta})")


def cmd_check(args):
    check(args.file, args, args.fixture)


def cmd_roundtrip(args):
    model = build(args)
    fresh = names_doc(model, args)
    if args.model == "resnet18" and args.num_classes == 62:
        with open(NAMES_FILE) as f:
            committed = json.load(f)
        if committed["tensors"] != fresh["tensors"]:
            fail(f"{NAMES_FILE} drifted from torchvision's state_dict; regenerate it with: {sys.argv[0]} names {NAMES_FILE}")
        print(f"ok: {os.path.relpath(NAMES_FILE, REPO)} matches torchvision's state_dict ({len(fresh['tensors'])} entries)")
    with tempfile.TemporaryDirectory() as tmp:
        from_torch = os.path.join(tmp, "from_torch.safetensors")
        for_torch = os.path.join(tmp, "for_torch.safetensors")
        runtime_model = os.path.join(tmp, "runtime_model.safetensors")
        names = os.path.join(tmp, "names.json")
        with open(names, "w") as f:
            json.dump(fresh, f)
        save(fixture(model), from_torch, {"format": "pt"})
        env = dict(os.environ, FEDSCALE_SAFETENSORS_NAMES=names, FEDSCALE_SAFETENSORS_MODEL_FOR_TORCH=runtime_model,
                   FEDSCALE_SAFETENSORS_FROM_TORCH=from_torch, FEDSCALE_SAFETENSORS_FOR_TORCH=for_torch)
        cmd = ["go", "test", "-count=1", "-run", "^(TestTorchInterop|TestRuntimeResNet18)$", "-v", PKG]
        r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if r.returncode != 0 or "--- PASS: TestTorchInterop" not in r.stdout:
            print(r.stdout + r.stderr, file=sys.stderr)
            fail("go test " + PKG + " -run TestTorchInterop")
        print("ok: Go read PyTorch's file value for value and wrote the same bytes")
        with open(from_torch, "rb") as a, open(for_torch, "rb") as b:
            if a.read() != b.read():
                fail("Go's file differs from the reference layout written here")
        check(for_torch, args, True)
        if args.model == "resnet18" and args.num_classes == 62:
            if not os.path.exists(runtime_model):
                print("skipped: the runtime has no resnet18 yet (TestRuntimeResNet18 skipped)")
                return
            check(runtime_model, args, False)
            job_model = os.path.join(tmp, "job_model.safetensors")
            env = dict(os.environ, FEDSCALE_SAFETENSORS_JOB_FOR_TORCH=job_model)
            cmd = ["go", "test", "-count=1", "-run", "^TestModelFileResNet18$", "-v", "./runtime/aggregator"]
            r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            if r.returncode != 0 or not os.path.exists(job_model):
                print(r.stdout[-4000:] + r.stderr, file=sys.stderr)
                fail("go test ./runtime/aggregator -run TestModelFileResNet18")
            check(job_model, args, False)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--num-classes", type=int, default=62)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("names")
    s.add_argument("out")
    s.set_defaults(fn=cmd_names)
    s = sub.add_parser("write")
    s.add_argument("out")
    s.set_defaults(fn=cmd_write)
    s = sub.add_parser("check")
    s.add_argument("file")
    s.add_argument("--fixture", action="store_true")
    s.set_defaults(fn=cmd_check)
    s = sub.add_parser("roundtrip")
    s.set_defaults(fn=cmd_roundtrip)
    args = p.parse_args()
    torch.set_num_threads(1)
    args.fn(args)


if __name__ == "__main__":
    main()
