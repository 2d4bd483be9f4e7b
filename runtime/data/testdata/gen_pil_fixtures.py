#!/usr/bin/env python3
"""Writes pil_fixtures.json: what Pillow and torchvision make of small images,
for runtime/data's pipeline tests (pipeline_test.go) to compare with, bit for bit.

Run with Debian's python3-pil, python3-torch and python3-torchvision:
    /usr/bin/python3 runtime/data/testdata/gen_pil_fixtures.py
It reads a few real Fashion-MNIST images from /usr/share/datasets/fashion-mnist
(Debian's dataset-fashion-mnist) when present; the other inputs are seeded noise
and patterns, so the output is the same on every run with the same libraries.

Cases:
  resize   Image.resize((w, h), Image.BILINEAR) on mode 'L' images: 8-bit out.
  femnist  FedScale's femnist pipeline: convert('RGB'), Resize((32, 32)),
           (hflip when "flip"), ToTensor, Normalize((0.1307,), (0.3081,)).
  mnist    the same without convert('RGB') (torchvision's MNIST is mode 'L').
  cifar    FedScale's cifar training geometry with the random draws fixed:
           pad 4 with zeros, crop 32x32 at (top, left), hflip when "flip",
           ToTensor (no Normalize).
Inputs are in "images" (grey, hex, rows top to bottom); float outputs are
float32 little-endian, base64, channel planes of rows.
"""
import base64
import gzip
import json
import os
import struct

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pil_fixtures.json")
FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def noise(seed, h, w, c=1):
    return np.random.RandomState(seed).randint(0, 256, size=(c, h, w), dtype=np.uint8)


def pattern(h, w):
    y, x = np.mgrid[0:h, 0:w]
    v = (x * 255 // max(w - 1, 1)) ^ ((y // 3) % 2 * 255)  # a ramp with stripes
    v[h // 3: h // 2, w // 4: w // 2] = 255  # a hard-edged block
    return v.astype(np.uint8)[None]


def fashion(k):
    if not os.path.exists(FMNIST):
        return None
    with gzip.open(FMNIST) as f:
        f.read(16)
        f.seek(16 + 784 * k)
        return np.frombuffer(f.read(784), dtype=np.uint8).reshape(1, 28, 28).copy()


def f32(t):
    return base64.b64encode(t.detach().numpy().astype("<f4").tobytes()).decode()


def main():
    inputs = [("noise28", noise(1, 28, 28)), ("pattern28", pattern(28, 28)),
              ("noise128", noise(2, 128, 128)), ("noise45x20", noise(3, 20, 45)),
              ("noise7x100", noise(4, 100, 7)), ("noise3", noise(5, 3, 3)),
              ("pattern32", pattern(32, 32)), ("pattern64x50", pattern(50, 64))]
    for k in (0, 1):
        img = fashion(k)
        if img is not None:
            inputs.append((f"fashion{k}", img))

    images = {name: {"w": a.shape[2], "h": a.shape[1], "pix": a.tobytes().hex()} for name, a in inputs}
    resize = []
    for name, a in inputs:
        h, w = a.shape[1:]
        for ow, oh in ((32, 32), (32, h), (w, 32), (17, 40)):
            out = np.asarray(Image.fromarray(a[0], "L").resize((ow, oh), Image.BILINEAR))
            resize.append({"in": name, "out_w": ow, "out_h": oh, "out": out.tobytes().hex()})

    norm = T.Normalize((0.1307,), (0.3081,))
    femnist, mnist = [], []
    cases = [("noise28", False, True), ("pattern28", True, False), ("noise128", False, False),
             ("fashion0", True, True), ("noise45x20", True, False)]
    for name, flip, also_mnist in cases:
        if name not in images:
            continue
        img = Image.fromarray(dict(inputs)[name][0], "L")
        for rgb, out in ((True, femnist), (False, mnist)):
            if not rgb and not also_mnist:
                continue
            im = img.convert("RGB") if rgb else img
            im = T.Resize((32, 32))(im)
            if flip:
                im = F.hflip(im)
            out.append({"in": name, "flip": flip, "out": f32(norm(T.ToTensor()(im)))})

    cifar = []
    for seed, top, left, flip in ((8, 0, 8, True), (9, 7, 1, False)):
        a = noise(seed, 32, 32, 3)
        img = Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0)), "RGB")  # as CIFAR10.__getitem__
        im = F.crop(F.pad(img, 4, fill=0), top, left, 32, 32)  # RandomCrop(32, padding=4) at (top, left)
        if flip:
            im = F.hflip(im)
        cifar.append({"in": a.tobytes().hex(), "top": top, "left": left, "flip": flip,
                      "out": f32(T.ToTensor()(im))})

    with open(OUT, "w") as f:
        json.dump({"pillow": PIL.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
                   "images": images, "resize": resize, "femnist": femnist, "mnist": mnist, "cifar": cifar}, f, indent=0, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
