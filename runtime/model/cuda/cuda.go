// Package cuda is the CUDA backend of model.Trainer: the CPU backend's
// network (runtime/model/cpu) on an NVIDIA GPU, through the CUDA driver
// API, cuBLAS in plain FP32 and the backend's own kernels
// (runtime/model/cuda/kernels), compiled by NVRTC once per process for the
// device's compute capability. No cgo: package cudalib loads the libraries
// with purego.
//
// Only the executor's cuda build tag imports this package (importing purego
// links a program dynamically; the untagged executor stays static). The
// CPU backend is the reference: the executor's start-up self-check
// (runtime/device) compares one training step of both before the GPU
// trains anything.
package cuda

import (
	"fmt"
	"os"
	"sync"

	"github.com/fedscale/fedscale-go/runtime/device"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cuda/cudalib"
	"github.com/fedscale/fedscale-go/runtime/model/cuda/kernels"
)

// Backend is one opened GPU: its context, the compiled kernels and a cuBLAS
// handle, shared by every trainer of the process (one at a time).
type Backend struct {
	mu    sync.Mutex // the device runs one trainer's step at a time
	info  cudalib.DeviceInfo
	ctx   *cudalib.Context
	blas  *cudalib.CUBLAS
	fns   map[string]uintptr
	arch  string // the compute capability compiled for
	nvrtc string
	free  uint64 // device memory free at Open
	// Limit bounds the device memory each trainer holds, in bytes; 0 is
	// the free memory at Open shared by Share trainers.
	Limit uint64
	// Share is how many trainers share the device (the process's slots
	// times the executors on this GPU); 0 or 1 leaves a trainer all the
	// memory free at Open.
	Share int
}

// limit is the bound each trainer holds to.
func (b *Backend) limit() uint64 {
	if b.Limit > 0 {
		return b.Limit
	}
	return b.free / uint64(max(b.Share, 1))
}

// NVRTCDirEnv names a folder to load NVRTC from instead of the loader's
// search path (the CUDA image's base carries NVRTC on it).
const NVRTCDirEnv = "FEDSCALE_NVRTC"

// Open opens GPU ordinal: loads the driver, NVRTC and cuBLAS, compiles the
// kernels for the device and reports its memory. Each failure names what
// is missing.
func Open(ordinal int) (*Backend, error) {
	drv, err := cudalib.LoadDriver()
	if err != nil {
		return nil, err
	}
	devs, err := drv.Devices()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= len(devs) {
		return nil, fmt.Errorf("cuda:%d: %w: %d GPU(s) visible (cuda:0..cuda:%d)", ordinal, device.ErrNotVisible, len(devs), len(devs)-1)
	}
	info := devs[ordinal]
	nv, err := cudalib.LoadNVRTC(os.Getenv(NVRTCDirEnv))
	if err != nil {
		return nil, err
	}
	major, minor, err := nv.Arch(info.Major, info.Minor)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info, err)
	}
	ptx, err := nv.Compile(kernels.Source, kernels.File, kernels.Options(major, minor))
	if err != nil {
		return nil, fmt.Errorf("%s: compiling the kernels: %w", info, err)
	}
	ctx, err := drv.Open(ordinal)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info, err)
	}
	unbind, err := ctx.Bind()
	if err != nil {
		return nil, err
	}
	defer unbind()
	mod, err := ctx.Load(ptx)
	if err != nil {
		// PTX from NVRTC X.Y needs a driver of CUDA X.Y or later.
		v, _ := drv.Version()
		return nil, fmt.Errorf("%s: loading the kernels compiled by NVRTC %d.%d (the driver supports CUDA %d.%d; it must be at least NVRTC's): %w", info, nv.Major, nv.Minor, v/1000, v%1000/10, err)
	}
	b := &Backend{info: info, ctx: ctx, fns: map[string]uintptr{}, arch: fmt.Sprintf("%d.%d", major, minor), nvrtc: nv.Path}
	for _, name := range kernels.Names() {
		if b.fns[name], err = mod.Function(name); err != nil {
			return nil, err
		}
	}
	if b.blas, err = cudalib.LoadCUBLAS(); err != nil {
		return nil, err
	}
	if b.free, _, err = ctx.MemInfo(); err != nil {
		return nil, err
	}
	return b, nil
}

// String names the device for logs.
func (b *Backend) String() string {
	s := fmt.Sprintf("%s, %d MiB free at start, at most %d MiB per trainer", b.info, b.free>>20, b.limit()>>20)
	if b.Limit == 0 && b.Share > 1 {
		s += fmt.Sprintf(" (a %d-way share)", b.Share)
	}
	return s
}

// Info describes the device.
func (b *Backend) Info() cudalib.DeviceInfo { return b.info }

// MemInfo is the device's free and total memory now.
func (b *Backend) MemInfo() (free, total uint64, err error) {
	unbind, err := b.ctx.Bind()
	if err != nil {
		return 0, 0, err
	}
	defer unbind()
	return b.ctx.MemInfo()
}

// New returns a trainer for spec on this GPU.
func (b *Backend) New(spec model.Spec) (model.Trainer, error) {
	t, err := newTrainer(b.device(), spec)
	if err != nil {
		return nil, err
	}
	t.limit = b.limit()
	return t, nil
}
