#!/usr/bin/env bash
# scripts/gpu-check.sh — the CUDA backend's check on a machine with an
# NVIDIA GPU (README, "Training on a GPU"). Runs runtime/model/cuda's
# TestGPUMatchesCPU with FEDSCALE_GPU_CHECK=1: for every model, CPU and CUDA
# agree on the first step's loss (1e-5 relative), the small models on four
# steps' losses and final weights (1e-4), the deep ones on the first step's
# update; a NaN is an error; two GPU runs give the same bits. Then
# resnet18's training throughput (batch 20, 32x32x3) on the GPU and the CPU,
# and, when PyTorch with torchvision and CUDA is installed there, the same
# step timed in PyTorch and the ratio.
#
#   scripts/gpu-check.sh                 # in a checkout with Go: builds the test binary, runs it
#   scripts/gpu-check.sh bundle DIR      # here: DIR gets the test binary, NVRTC and this script
#   DIR/gpu-check.sh                     # there: nothing to install but the NVIDIA driver and cuBLAS
#
# The machine needs the NVIDIA driver (libcuda.so.1) and cuBLAS (the CUDA
# runtime, or run it inside an nvidia/cuda runtime image); NVRTC comes from
# the bundle (Debian's, from the tool cache) when the system has none.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "${1:-}" = bundle ]; then
	out=${2:?usage: gpu-check.sh bundle DIR}
	ROOT=$(cd "$HERE/.." && pwd)
	mkdir -p "$out/nvrtc"
	(cd "$ROOT" && CGO_ENABLED=0 go test -c -o "$out/gpu-check.test" ./runtime/model/cuda/)
	cp -P "$("$ROOT/scripts/tools.sh" nvrtc | tail -n1)"/libnvrtc* "$out/nvrtc/"
	cp "$HERE/gpu-check.sh" "$out/"
	echo "gpu-check: bundle in $out (run $out/gpu-check.sh on the GPU machine)"
	exit 0
fi
[ $# -eq 0 ] || { echo "usage: gpu-check.sh | gpu-check.sh bundle DIR" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$HERE/gpu-check.test
if [ ! -x "$bin" ]; then
	command -v go >/dev/null || { echo "gpu-check: no gpu-check.test beside this script and no Go toolchain to build it (make a bundle: scripts/gpu-check.sh bundle DIR)" >&2; exit 1; }
	bin=$work/gpu-check.test
	(cd "$HERE/.." && CGO_ENABLED=0 go test -c -o "$bin" ./runtime/model/cuda/)
fi
if [ -z "${FEDSCALE_NVRTC:-}" ] && [ -d "$HERE/nvrtc" ] && ! ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so\.1[12]'; then
	export FEDSCALE_NVRTC=$HERE/nvrtc
fi
if command -v nvidia-smi >/dev/null; then
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi

log=$work/go.log
status=0
(cd "$work" && FEDSCALE_GPU_CHECK=1 timeout 300 "$bin" -test.run '^TestGPU(MatchesCPU|Throughput)$' -test.v -test.timeout 290s) 2>&1 | tee "$log" || status=$?
if [ "$status" -eq 0 ]; then
	echo "gpu-check: CPU and CUDA agree on every model"
else
	echo "gpu-check: FAILED (exit $status)"
fi

# PyTorch's step on the same GPU, when it is there.
if python3 -c 'import torch, torchvision; assert torch.cuda.is_available()' 2>/dev/null; then
	torch_ms=$(python3 - <<'PY'
import time, torch, torchvision
torch.backends.cudnn.benchmark = False
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
m = torchvision.models.resnet18(num_classes=10).cuda()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.rand(20, 3, 32, 32, device="cuda")
y = torch.randint(0, 10, (20,), device="cuda")
def step():
    opt.zero_grad()
    torch.nn.functional.cross_entropy(m(x), y).backward()
    opt.step()
for _ in range(5):
    step()
torch.cuda.synchronize()
t = time.time()
for _ in range(50):
    step()
torch.cuda.synchronize()
print("%.3f" % ((time.time() - t) / 50 * 1000))
PY
)
	go_ms=$(sed -n 's/.*THROUGHPUT cuda resnet18 batch 20 32x32x3: \([0-9.]*\) ms\/step.*/\1/p' "$log")
	echo "gpu-check: PyTorch resnet18 batch 20 32x32x3: $torch_ms ms/step"
	if [ -n "$go_ms" ]; then
		echo "gpu-check: ratio CUDA backend / PyTorch: $(awk -v a="$go_ms" -v b="$torch_ms" 'BEGIN { printf "%.2f", a / b }') (aim: at most 1.5)"
	fi
else
	echo "gpu-check: no PyTorch with torchvision and CUDA here: no PyTorch comparison"
fi
exit "$status"
