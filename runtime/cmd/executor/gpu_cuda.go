//go:build cuda

package main

import (
	"github.com/fedscale/fedscale-go/runtime/device"
	"github.com/fedscale/fedscale-go/runtime/model/cuda"
)

// openGPU opens the CUDA backend (runtime/model/cuda): this build has it.
var openGPU device.Opener = func(ordinal int) (device.GPU, error) {
	b, err := cuda.Open(ordinal)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	b.Limit = uint64(gpuMemoryMB) << 20
	return b, nil
}
