//go:build cuda

package main

import (
	"github.com/fedscale/fedscale-go/runtime/device"
	"github.com/fedscale/fedscale-go/runtime/model/cuda"
)

// openGPU opens the CUDA backend (runtime/model/cuda): this build has it.
// Each trainer holds at most memoryMB MiB (0: the memory free at start
// shared by share trainers).
func openGPU(memoryMB, share int) device.Opener {
	return func(ordinal int) (device.GPU, error) {
		b, err := cuda.Open(ordinal)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		b.Limit, b.Share = uint64(memoryMB)<<20, share
		return b, nil
	}
}
