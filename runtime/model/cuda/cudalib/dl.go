// Package cudalib loads NVIDIA's libraries at run time with purego, without
// cgo: the CUDA driver API (libcuda.so.1, which the NVIDIA container
// toolkit mounts into a container), cuBLAS and NVRTC. It binds the few
// functions the CUDA backend calls and turns their status codes into
// errors that name the library, the call and what to do.
//
// Only the executor's cuda build tag imports it (runtime/model/cuda): a
// program that imports purego is dynamically linked, and the untagged
// executor must stay a static binary that runs on scratch.
package cudalib

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Sonames each library is looked for under, in order of preference.
var (
	DriverSonames = []string{"libcuda.so.1"}
	CUBLASSonames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}
	NVRTCSonames  = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"}
)

// open loads the first of sonames that the dynamic loader finds, from dir
// when dir is not "" (a folder such as the tool cache's NVRTC), else from
// the loader's search path. what names the library in the error, hint says
// how to get it.
func open(what, dir string, sonames []string, hint string) (uintptr, string, error) {
	var tried []string
	for _, so := range sonames {
		path := so
		if dir != "" {
			path = filepath.Join(dir, so)
			if _, err := os.Stat(path); err != nil {
				tried = append(tried, path+": not there")
				continue
			}
		}
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, path, nil
		}
		tried = append(tried, err.Error())
	}
	return 0, "", fmt.Errorf("%s: none of %s could be loaded (%s); %s", what, strings.Join(sonames, ", "), strings.Join(tried, "; "), hint)
}

// binder binds functions of one library, remembering the first missing
// symbol so a whole table is bound before one error is returned.
type binder struct {
	what, path string
	h          uintptr
	err        error
}

func (b *binder) bind(fptr any, name string) {
	if b.err != nil {
		return
	}
	sym, err := purego.Dlsym(b.h, name)
	if err != nil {
		b.err = fmt.Errorf("%s %s: no symbol %s (the library is too old or not the one expected): %w", b.what, b.path, name, err)
		return
	}
	purego.RegisterFunc(fptr, sym)
}

// cstrings returns NUL-terminated copies of ss and an array of pointers to
// them, for a C char** argument. The caller keeps both alive over the call.
func cstrings(ss []string) ([][]byte, []*byte) {
	bufs := make([][]byte, len(ss))
	ptrs := make([]*byte, len(ss)+1)
	for i, s := range ss {
		bufs[i] = append([]byte(s), 0)
		ptrs[i] = &bufs[i][0]
	}
	return bufs, ptrs
}

// gostring copies a NUL-terminated C string.
func gostring(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
		if len(b) > 1<<16 {
			break
		}
	}
	return string(b)
}

func getenv(k string) string { return os.Getenv(k) }

// ErrNoDevice is returned (wrapped) when the driver loads but sees no GPU.
var ErrNoDevice = errors.New("no CUDA device")
