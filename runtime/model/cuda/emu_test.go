package cuda

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/fedscale/fedscale-go/runtime/model/cuda/kernels"
)

// emuDev runs the backend's real kernel source on the CPU: kernels.cu
// compiled by g++ against testdata/emu.h, which loops each launch over its
// grid thread by thread, loaded with purego like the CUDA libraries. Its
// matrix product is a plain row-major triple loop standing in for cuBLAS.
// It checks the kernels' logic and the trainer's host code (shapes,
// buffers, launch arguments) without a GPU; what only a GPU can show
// (the driver, cuBLAS, timing) is scripts/gpu-check.sh's.
type emuDev struct {
	launchFn func(name string, n int64, block uint32, params unsafe.Pointer) int32
	gemmFn   func(ta, tb, m, n, k int32, a uint64, lda int32, b uint64, ldb int32, c uint64, ldc int32, acc int32)
	plainFn  func(ta, tb, m, n, k int32, a uint64, lda int32, b uint64, ldb int32, c uint64, ldc int32, acc int32)
	// reorder: products by plainFn, rounding unlike the CPU backend's.
	reorder bool
	// skipTransA: products with op(A) = Aᵀ (the backward passes' input
	// gradients) are not computed: a broken GPU for the self-check's test.
	skipTransA bool
	mallocFn   func(bytes uint64) uint64
	freeFn     func(p uint64)
	writeFn    func(dst uint64, src unsafe.Pointer, n uint64)
	readFn     func(dst unsafe.Pointer, src uint64, n uint64)
	copyFn     func(dst, src uint64, n uint64)
	mu         sync.Mutex
}

var (
	emuOnce sync.Once
	emu     *emuDev
	emuErr  error
)

// emuSource is the translation unit: the header, the kernels, and the
// exported launcher that unpacks cuLaunchKernel-style parameters.
func emuSource() string {
	var b strings.Builder
	b.WriteString(`#include "emu.h"
#include "kernels.cu"
template <typename... A, size_t... I>
static void fs_call(void (*k)(A...), void** p, std::index_sequence<I...>) { k(*static_cast<A*>(p[I])...); }
template <typename... A>
static void fs_run(void* k, void** p) { fs_call((void (*)(A...))k, p, std::index_sequence_for<A...>{}); }
typedef std::pair<void*, void (*)(void*, void**)> fs_entry;
template <typename... A>
static fs_entry fs_reg(void (*k)(A...)) { return fs_entry((void*)k, &fs_run<A...>); }
static std::map<std::string, fs_entry> fs_table() {
	std::map<std::string, fs_entry> t;
`)
	for _, n := range kernels.Names() {
		fmt.Fprintf(&b, "\tt[%q] = fs_reg(%s);\n", n, n)
	}
	b.WriteString(`	return t;
}
extern "C" int fs_launch(const char* name, long long n, unsigned block, void** params) {
	static std::map<std::string, fs_entry> table = fs_table();
	auto it = table.find(name);
	if (it == table.end()) return -1;
	long long grid = (n + block - 1) / block;
	blockDim.x = block;
	for (long long g = 0; g < grid; g++) {
		blockIdx.x = (unsigned)g;
		for (unsigned t = 0; t < block; t++) { threadIdx.x = t; it->second.second(it->second.first, params); }
	}
	return 0;
}
extern "C" void fs_gemm(int ta, int tb, int m, int n, int k, uint64_t a, int lda, uint64_t b, int ldb, uint64_t c, int ldc, int acc) {
	const float *A = (const float*)a, *B = (const float*)b;
	float* C = (float*)c;
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			float s = acc ? C[i * ldc + j] : 0;
			for (int p = 0; p < k; p++) s = fmaf(ta ? A[p * lda + i] : A[i * lda + p], tb ? B[j * ldb + p] : B[p * ldb + j], s);
			C[i * ldc + j] = s;
		}
}
// A product summed without fused multiply-adds, in another order than the
// CPU's: what cuBLAS's rounding differences look like.
extern "C" void fs_gemm_plain(int ta, int tb, int m, int n, int k, uint64_t a, int lda, uint64_t b, int ldb, uint64_t c, int ldc, int acc) {
	const float *A = (const float*)a, *B = (const float*)b;
	float* C = (float*)c;
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			float s = 0;
			for (int p = k - 1; p >= 0; p--) s += (ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
			C[i * ldc + j] = acc ? C[i * ldc + j] + s : s;
		}
}
extern "C" uint64_t fs_malloc(uint64_t n) { return (uint64_t)calloc(1, n); }
extern "C" void fs_free(uint64_t p) { free((void*)p); }
extern "C" void fs_write(uint64_t dst, const void* src, uint64_t n) { memcpy((void*)dst, src, n); }
extern "C" void fs_read(void* dst, uint64_t src, uint64_t n) { memcpy(dst, (const void*)src, n); }
extern "C" void fs_copy(uint64_t dst, uint64_t src, uint64_t n) { memmove((void*)dst, (const void*)src, n); }
`)
	return b.String()
}

// newEmu builds the emulation once per test binary; without g++ the test
// is skipped (under CI it fails: .ci/run installs g++).
func newEmu(t *testing.T) *emuDev {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the emulation is built for linux")
	}
	gxx, err := exec.LookPath("g++")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("g++ is required under CI (.ci/run installs it)")
		}
		t.Skip("no g++: the kernels' host emulation is not built")
	}
	emuOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fedscale-cuda-emu-")
		if err != nil {
			emuErr = err
			return
		}
		for name, data := range map[string]string{"emu.cc": emuSource(), "kernels.cu": kernels.Source} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				emuErr = err
				return
			}
		}
		hdr, err := os.ReadFile("testdata/emu.h")
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "emu.h"), hdr, 0o644)
		}
		if err != nil {
			emuErr = err
			return
		}
		lib := filepath.Join(dir, "libemu.so")
		cmd := exec.Command(gxx, "-std=c++17", "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC", "-w", "-o", lib, filepath.Join(dir, "emu.cc"))
		if out, err := cmd.CombinedOutput(); err != nil {
			emuErr = fmt.Errorf("g++: %v\n%s", err, out)
			return
		}
		h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			emuErr = err
			return
		}
		os.RemoveAll(dir) // the loaded library stays mapped
		e := &emuDev{}
		purego.RegisterLibFunc(&e.launchFn, h, "fs_launch")
		purego.RegisterLibFunc(&e.gemmFn, h, "fs_gemm")
		purego.RegisterLibFunc(&e.plainFn, h, "fs_gemm_plain")
		purego.RegisterLibFunc(&e.mallocFn, h, "fs_malloc")
		purego.RegisterLibFunc(&e.freeFn, h, "fs_free")
		purego.RegisterLibFunc(&e.writeFn, h, "fs_write")
		purego.RegisterLibFunc(&e.readFn, h, "fs_read")
		purego.RegisterLibFunc(&e.copyFn, h, "fs_copy")
		emu = e
	})
	if emuErr != nil {
		t.Fatal(emuErr)
	}
	return emu
}

// with is another emulated device on the same library, its products
// reordered and, with skipTransA, broken.
func (e *emuDev) with(reorder, skipTransA bool) *emuDev {
	return &emuDev{launchFn: e.launchFn, gemmFn: e.gemmFn, plainFn: e.plainFn, mallocFn: e.mallocFn, freeFn: e.freeFn,
		writeFn: e.writeFn, readFn: e.readFn, copyFn: e.copyFn, reorder: reorder, skipTransA: skipTransA}
}

func (e *emuDev) String() string { return "emulated device (g++)" }

func (e *emuDev) bind() (func(), error) { e.mu.Lock(); return e.mu.Unlock, nil }

func (e *emuDev) alloc(bytes uint64) (uint64, error) {
	p := e.mallocFn(bytes)
	if p == 0 {
		return 0, fmt.Errorf("emulated device: out of memory allocating %d bytes", bytes)
	}
	return p, nil
}

func (e *emuDev) free(p uint64)                        { e.freeFn(p) }
func (e *emuDev) memInfo() (uint64, uint64, error)     { return 0, 0, nil }
func (e *emuDev) copy(dst, src uint64, n uint64) error { e.copyFn(dst, src, n); return nil }

func (e *emuDev) write(dst uint64, src unsafe.Pointer, n uint64) error {
	e.writeFn(dst, src, n)
	return nil
}

func (e *emuDev) read(dst unsafe.Pointer, src uint64, n uint64) error {
	e.readFn(dst, src, n)
	return nil
}

func (e *emuDev) launch(name string, n int64, args ...any) error {
	if n <= 0 {
		return nil
	}
	ptrs, vals, err := kernelParams(args)
	if err != nil {
		return fmt.Errorf("kernel %s: %w", name, err)
	}
	var p unsafe.Pointer
	if len(ptrs) > 0 {
		p = unsafe.Pointer(&ptrs[0])
	}
	code := e.launchFn(name, n, blockSize, p)
	runtime.KeepAlive(vals)
	runtime.KeepAlive(ptrs)
	if code != 0 {
		return fmt.Errorf("emulated device: no kernel %s", name)
	}
	return nil
}

func (e *emuDev) gemm(transA, transB bool, m, n, k int, a uint64, lda int, b uint64, ldb int, c uint64, ldc int, acc bool) error {
	i := func(v bool) int32 {
		if v {
			return 1
		}
		return 0
	}
	if e.skipTransA && transA {
		return nil
	}
	f := e.gemmFn
	if e.reorder {
		f = e.plainFn
	}
	f(i(transA), i(transB), int32(m), int32(n), int32(k), a, int32(lda), b, int32(ldb), c, int32(ldc), i(acc))
	return nil
}
