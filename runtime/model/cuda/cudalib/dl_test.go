package cudalib

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// Each library missing gives one error naming every soname tried and what
// to do. This machine has no NVIDIA driver and no cuBLAS; on one that has
// them the test says so and checks the rest.
func TestMissingLibraries(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("this machine has an NVIDIA driver")
	}
	_, err := LoadDriver()
	for _, want := range []string{"CUDA driver", "libcuda.so.1", "NVIDIA container toolkit"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadDriver without a driver: %v; want it to mention %q", err, want)
		}
	}
	if _, err := LoadCUBLAS(); err == nil || !strings.Contains(err.Error(), "libcublas.so.13, libcublas.so.12, libcublas.so.11") {
		t.Errorf("LoadCUBLAS without cuBLAS: %v", err)
	}
	empty := t.TempDir()
	_, err = LoadNVRTC(empty)
	if err == nil || !strings.Contains(err.Error(), empty+"/libnvrtc.so.12: not there") || !strings.Contains(err.Error(), "libnvrtc12") {
		t.Errorf("LoadNVRTC from an empty folder: %v", err)
	}
	// A file that is not a library is reported with the loader's reason.
	if err := os.WriteFile(empty+"/libnvrtc.so.12", []byte("not an ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = LoadNVRTC(empty); err == nil || !strings.Contains(err.Error(), "libnvrtc.so.12") {
		t.Errorf("LoadNVRTC of a broken file: %v", err)
	}
}

func TestDriverErrors(t *testing.T) {
	e := &Error{Call: "cuMemAlloc(1024 bytes)", Code: errOutOfMemory, Name: "CUDA_ERROR_OUT_OF_MEMORY", Text: "out of memory"}
	if !e.OutOfMemory() || !strings.Contains(e.Error(), "cuMemAlloc(1024 bytes): CUDA_ERROR_OUT_OF_MEMORY (2)") {
		t.Errorf("%v", e)
	}
	if !errors.Is(&Error{Code: errNoDevice}, ErrNoDevice) || errors.Is(e, ErrNoDevice) {
		t.Error("ErrNoDevice matching")
	}
}
