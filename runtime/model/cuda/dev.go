package cuda

import (
	"fmt"
	"runtime"
	"unsafe"
)

// dev is what the trainer needs of a device: memory, the kernels by name,
// a matrix product with sgemm.Gemm's row-major semantics, and binding the
// calling goroutine to it. Addresses are device addresses.
type dev interface {
	String() string
	bind() (func(), error)
	alloc(bytes uint64) (uint64, error)
	free(p uint64)
	memInfo() (free, total uint64, err error)
	write(dst uint64, src unsafe.Pointer, bytes uint64) error
	read(dst unsafe.Pointer, src uint64, bytes uint64) error
	copy(dst, src uint64, bytes uint64) error
	// launch runs kernel name over n threads (1-D); args are the kernel's
	// arguments, each a uint64 (an address or unsigned long long), int32,
	// int64 or float32, exactly as the kernel declares them.
	launch(name string, n int64, args ...any) error
	gemm(transA, transB bool, m, n, k int, a uint64, lda int, b uint64, ldb int, c uint64, ldc int, acc bool) error
}

// blockSize is every launch's threads per block.
const blockSize = 256

// kernelParams lays args out for cuLaunchKernel: an array of pointers to
// each argument's value. The values live in one Go allocation the caller
// keeps alive over the call.
func kernelParams(args []any) ([]unsafe.Pointer, []uint64, error) {
	vals := make([]uint64, len(args))
	ptrs := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		p := unsafe.Pointer(&vals[i])
		switch v := a.(type) {
		case uint64:
			*(*uint64)(p) = v
		case int64:
			*(*int64)(p) = v
		case int32:
			*(*int32)(p) = v
		case float32:
			*(*float32)(p) = v
		default:
			return nil, nil, fmt.Errorf("kernel argument %d: type %T (want uint64, int64, int32 or float32)", i, a)
		}
		ptrs[i] = p
	}
	return ptrs, vals, nil
}

// cudaDev is a GPU of an opened Backend.
type cudaDev struct{ b *Backend }

func (b *Backend) device() dev { return cudaDev{b} }

func (d cudaDev) String() string { return d.b.info.String() }

func (d cudaDev) bind() (func(), error) {
	d.b.mu.Lock()
	unbind, err := d.b.ctx.Bind()
	if err != nil {
		d.b.mu.Unlock()
		return nil, err
	}
	return func() { unbind(); d.b.mu.Unlock() }, nil
}

func (d cudaDev) alloc(bytes uint64) (uint64, error) { return d.b.ctx.Alloc(bytes) }
func (d cudaDev) free(p uint64)                      { _ = d.b.ctx.Free(p) }
func (d cudaDev) memInfo() (uint64, uint64, error)   { return d.b.ctx.MemInfo() }

func (d cudaDev) write(dst uint64, src unsafe.Pointer, bytes uint64) error {
	return d.b.ctx.CopyIn(dst, src, bytes)
}

func (d cudaDev) read(dst unsafe.Pointer, src uint64, bytes uint64) error {
	return d.b.ctx.CopyOut(dst, src, bytes)
}

func (d cudaDev) copy(dst, src uint64, bytes uint64) error { return d.b.ctx.Copy(dst, src, bytes) }

func (d cudaDev) launch(name string, n int64, args ...any) error {
	fn, ok := d.b.fns[name]
	if !ok {
		return fmt.Errorf("cuda: no kernel %s", name)
	}
	if n <= 0 {
		return nil
	}
	grid := (n + blockSize - 1) / blockSize
	if grid > 1<<31-1 {
		return fmt.Errorf("cuda: kernel %s over %d threads: too many", name, n)
	}
	ptrs, vals, err := kernelParams(args)
	if err != nil {
		return fmt.Errorf("cuda: kernel %s: %w", name, err)
	}
	var p unsafe.Pointer
	if len(ptrs) > 0 {
		p = unsafe.Pointer(&ptrs[0])
	}
	err = d.b.ctx.Launch(fn, uint32(grid), blockSize, p)
	runtime.KeepAlive(vals)
	runtime.KeepAlive(ptrs)
	if err != nil {
		return fmt.Errorf("kernel %s: %w", name, err)
	}
	return nil
}

func (d cudaDev) gemm(transA, transB bool, m, n, k int, a uint64, lda int, b uint64, ldb int, c uint64, ldc int, acc bool) error {
	return d.b.blas.Gemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
}
