//go:build !cuda

package main

import "github.com/fedscale/fedscale-go/runtime/device"

// openGPU is nil: this build has no GPU backend (build tag cuda adds it),
// so it stays a static binary that runs on scratch.
func openGPU(int, int) device.Opener { return nil }
