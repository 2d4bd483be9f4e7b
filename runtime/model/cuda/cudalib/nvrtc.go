package cudalib

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// NVRTC is a loaded NVRTC library: CUDA C to PTX, with no GPU or driver.
type NVRTC struct {
	Path         string
	Major, Minor int
	archs        []int32 // supported SM versions, e.g. 70, 75, 80

	version        func(major, minor *int32) int32
	numSupported   func(n *int32) int32
	supported      func(archs *int32) int32
	createProgram  func(prog *uintptr, src, name string, nHeaders int32, headers, names unsafe.Pointer) int32
	compileProgram func(prog uintptr, nOpts int32, opts unsafe.Pointer) int32
	programLogSize func(prog uintptr, n *uint64) int32
	programLog     func(prog uintptr, log *byte) int32
	ptxSize        func(prog uintptr, n *uint64) int32
	ptx            func(prog uintptr, out *byte) int32
	destroyProgram func(prog *uintptr) int32
	errorString    func(code int32) *byte
}

// LoadNVRTC loads NVRTC from dir ("" for the loader's search path, as on
// the CUDA image).
func LoadNVRTC(dir string) (*NVRTC, error) {
	if dir != "" {
		// NVRTC dlopens its builtins library by soname at the first
		// compile; one already loaded from dir satisfies that lookup.
		builtins, _ := filepath.Glob(filepath.Join(dir, "libnvrtc-builtins.so.*"))
		slices.SortFunc(builtins, func(a, b string) int { return len(a) - len(b) })
		if len(builtins) > 0 {
			if _, err := purego.Dlopen(builtins[0], purego.RTLD_NOW|purego.RTLD_GLOBAL); err != nil {
				return nil, fmt.Errorf("NVRTC builtins %s: %w", builtins[0], err)
			}
		}
	}
	h, path, err := open("NVRTC", dir, NVRTCSonames, "the CUDA image's base carries it (nvidia/cuda runtime images); elsewhere install libnvrtc12")
	if err != nil {
		return nil, err
	}
	n := &NVRTC{Path: path}
	b := &binder{what: "NVRTC", path: path, h: h}
	b.bind(&n.version, "nvrtcVersion")
	b.bind(&n.numSupported, "nvrtcGetNumSupportedArchs")
	b.bind(&n.supported, "nvrtcGetSupportedArchs")
	b.bind(&n.createProgram, "nvrtcCreateProgram")
	b.bind(&n.compileProgram, "nvrtcCompileProgram")
	b.bind(&n.programLogSize, "nvrtcGetProgramLogSize")
	b.bind(&n.programLog, "nvrtcGetProgramLog")
	b.bind(&n.ptxSize, "nvrtcGetPTXSize")
	b.bind(&n.ptx, "nvrtcGetPTX")
	b.bind(&n.destroyProgram, "nvrtcDestroyProgram")
	b.bind(&n.errorString, "nvrtcGetErrorString")
	if b.err != nil {
		return nil, b.err
	}
	var major, minor, count int32
	if err := n.check("nvrtcVersion", n.version(&major, &minor)); err != nil {
		return nil, err
	}
	n.Major, n.Minor = int(major), int(minor)
	if err := n.check("nvrtcGetNumSupportedArchs", n.numSupported(&count)); err != nil {
		return nil, err
	}
	if count <= 0 || count > 256 {
		return nil, fmt.Errorf("NVRTC %s: %d supported architectures", path, count)
	}
	n.archs = make([]int32, count)
	if err := n.check("nvrtcGetSupportedArchs", n.supported(&n.archs[0])); err != nil {
		return nil, err
	}
	slices.Sort(n.archs)
	return n, nil
}

// Archs lists the SM versions this NVRTC compiles for (70 is 7.0).
func (n *NVRTC) Archs() []int { return slicesInt(n.archs) }

func slicesInt(a []int32) []int {
	out := make([]int, len(a))
	for i, v := range a {
		out[i] = int(v)
	}
	return out
}

// Arch is the architecture to compile for on a device of compute
// capability major.minor: the device's own when NVRTC knows it, else the
// newest NVRTC knows below it (the driver JIT-compiles that PTX forward).
func (n *NVRTC) Arch(major, minor int) (int, int, error) {
	want := int32(major*10 + minor)
	best := int32(-1)
	for _, a := range n.archs {
		if a <= want {
			best = a
		}
	}
	if best < 0 {
		return 0, 0, fmt.Errorf("NVRTC %d.%d compiles for compute capabilities %v; the device's %d.%d is older than all of them", n.Major, n.Minor, n.Archs(), major, minor)
	}
	return int(best / 10), int(best % 10), nil
}

func (n *NVRTC) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	return fmt.Errorf("NVRTC %s: %s: %s (%d)", n.Path, call, gostring(n.errorString(code)), code)
}

// Compile compiles src (named file in diagnostics) with opts and returns
// the PTX. A compile error carries NVRTC's log.
func (n *NVRTC) Compile(src, file string, opts []string) ([]byte, error) {
	var prog uintptr
	if err := n.check("nvrtcCreateProgram", n.createProgram(&prog, src, file, 0, nil, nil)); err != nil {
		return nil, err
	}
	defer n.destroyProgram(&prog)
	bufs, ptrs := cstrings(opts)
	code := n.compileProgram(prog, int32(len(opts)), unsafe.Pointer(&ptrs[0]))
	runtime.KeepAlive(bufs)
	runtime.KeepAlive(ptrs)
	if code != 0 {
		return nil, fmt.Errorf("%w\n%s", n.check("nvrtcCompileProgram "+strings.Join(opts, " "), code), n.log(prog))
	}
	var size uint64
	if err := n.check("nvrtcGetPTXSize", n.ptxSize(prog, &size)); err != nil {
		return nil, err
	}
	if size == 0 || size > 1<<30 {
		return nil, fmt.Errorf("NVRTC %s: PTX of %d bytes", n.Path, size)
	}
	out := make([]byte, size)
	if err := n.check("nvrtcGetPTX", n.ptx(prog, &out[0])); err != nil {
		return nil, err
	}
	return out, nil // NUL-terminated, as cuModuleLoadData wants it
}

func (n *NVRTC) log(prog uintptr) string {
	var size uint64
	if n.programLogSize(prog, &size) != 0 || size <= 1 || size > 1<<24 {
		return ""
	}
	b := make([]byte, size)
	if n.programLog(prog, &b[0]) != 0 {
		return ""
	}
	return strings.TrimRight(string(b), "\x00\n")
}
