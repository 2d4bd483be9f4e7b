package cudalib

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Driver is the loaded CUDA driver API (libcuda.so.1).
type Driver struct {
	Path string

	initFn         func(flags uint32) int32
	driverVersion  func(v *int32) int32
	deviceCount    func(n *int32) int32
	deviceGet      func(dev *int32, ordinal int32) int32
	deviceAttr     func(v *int32, attr int32, dev int32) int32
	deviceName     func(name *byte, n int32, dev int32) int32
	deviceTotalMem func(bytes *uint64, dev int32) int32
	primaryRetain  func(ctx *uintptr, dev int32) int32
	primaryRelease func(dev int32) int32
	ctxSetCurrent  func(ctx uintptr) int32
	ctxSynchronize func() int32
	memGetInfo     func(free, total *uint64) int32
	memAlloc       func(ptr *uint64, size uint64) int32
	memFree        func(ptr uint64) int32
	memcpyHtoD     func(dst uint64, src unsafe.Pointer, size uint64) int32
	memcpyDtoH     func(dst unsafe.Pointer, src uint64, size uint64) int32
	memcpyDtoD     func(dst, src uint64, size uint64) int32
	memsetD32      func(dst uint64, v uint32, n uint64) int32
	moduleLoadData func(mod *uintptr, image unsafe.Pointer) int32
	moduleGetFunc  func(fn *uintptr, mod uintptr, name string) int32
	launchKernel   func(fn uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params, extra unsafe.Pointer) int32
	errorName      func(code int32, s **byte) int32
	errorString    func(code int32, s **byte) int32
}

// Device attributes the backend reads (CUdevice_attribute).
const (
	attrComputeMajor = 75
	attrComputeMinor = 76
)

// LoadDriver loads libcuda.so.1 and initialises it. Without the NVIDIA
// driver (no GPU, or a container started without the NVIDIA runtime) it
// fails with an error that says so.
func LoadDriver() (*Driver, error) {
	h, path, err := open("CUDA driver", "", DriverSonames,
		"the NVIDIA driver is not installed here, or the container was not started with the NVIDIA container toolkit (docker run --gpus, or a Kubernetes nvidia.com/gpu limit)")
	if err != nil {
		return nil, err
	}
	d := &Driver{Path: path}
	b := &binder{what: "CUDA driver", path: path, h: h}
	b.bind(&d.initFn, "cuInit")
	b.bind(&d.driverVersion, "cuDriverGetVersion")
	b.bind(&d.deviceCount, "cuDeviceGetCount")
	b.bind(&d.deviceGet, "cuDeviceGet")
	b.bind(&d.deviceAttr, "cuDeviceGetAttribute")
	b.bind(&d.deviceName, "cuDeviceGetName")
	b.bind(&d.deviceTotalMem, "cuDeviceTotalMem_v2")
	b.bind(&d.primaryRetain, "cuDevicePrimaryCtxRetain")
	b.bind(&d.primaryRelease, "cuDevicePrimaryCtxRelease_v2")
	b.bind(&d.ctxSetCurrent, "cuCtxSetCurrent")
	b.bind(&d.ctxSynchronize, "cuCtxSynchronize")
	b.bind(&d.memGetInfo, "cuMemGetInfo_v2")
	b.bind(&d.memAlloc, "cuMemAlloc_v2")
	b.bind(&d.memFree, "cuMemFree_v2")
	b.bind(&d.memcpyHtoD, "cuMemcpyHtoD_v2")
	b.bind(&d.memcpyDtoH, "cuMemcpyDtoH_v2")
	b.bind(&d.memcpyDtoD, "cuMemcpyDtoD_v2")
	b.bind(&d.memsetD32, "cuMemsetD32_v2")
	b.bind(&d.moduleLoadData, "cuModuleLoadData")
	b.bind(&d.moduleGetFunc, "cuModuleGetFunction")
	b.bind(&d.launchKernel, "cuLaunchKernel")
	b.bind(&d.errorName, "cuGetErrorName")
	b.bind(&d.errorString, "cuGetErrorString")
	if b.err != nil {
		return nil, b.err
	}
	if err := d.check("cuInit", d.initFn(0)); err != nil {
		return nil, fmt.Errorf("%w (is a GPU visible? check nvidia-smi and NVIDIA_VISIBLE_DEVICES)", err)
	}
	return d, nil
}

// CUresult codes the backend tells apart.
const (
	errOutOfMemory = 2
	errNoDevice    = 100
)

// Error is a failed driver call.
type Error struct {
	Call string
	Code int32
	Name string // CUDA_ERROR_...
	Text string
}

func (e *Error) Error() string {
	return fmt.Sprintf("CUDA driver: %s: %s (%d): %s", e.Call, e.Name, e.Code, e.Text)
}

// OutOfMemory reports whether the call failed for lack of device memory.
func (e *Error) OutOfMemory() bool { return e.Code == errOutOfMemory }

// Is makes errors.Is(err, ErrNoDevice) true for CUDA_ERROR_NO_DEVICE.
func (e *Error) Is(target error) bool { return target == ErrNoDevice && e.Code == errNoDevice }

func (d *Driver) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	var name, text *byte
	d.errorName(code, &name)
	d.errorString(code, &text)
	return &Error{Call: call, Code: code, Name: gostring(name), Text: gostring(text)}
}

// Version is the driver's CUDA version, e.g. 12040 for 12.4.
func (d *Driver) Version() (int, error) {
	var v int32
	err := d.check("cuDriverGetVersion", d.driverVersion(&v))
	return int(v), err
}

// DeviceInfo describes one GPU.
type DeviceInfo struct {
	Ordinal      int
	Name         string
	Major, Minor int    // compute capability
	Memory       uint64 // bytes
}

func (i DeviceInfo) String() string {
	return fmt.Sprintf("cuda:%d %s (compute capability %d.%d, %.1f GiB)", i.Ordinal, i.Name, i.Major, i.Minor, float64(i.Memory)/(1<<30))
}

// Devices lists the visible GPUs; none is ErrNoDevice.
func (d *Driver) Devices() ([]DeviceInfo, error) {
	var n int32
	if err := d.check("cuDeviceGetCount", d.deviceCount(&n)); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("CUDA driver %s: %w visible (NVIDIA_VISIBLE_DEVICES=%q)", d.Path, ErrNoDevice, getenv("NVIDIA_VISIBLE_DEVICES"))
	}
	out := make([]DeviceInfo, 0, n)
	for i := range n {
		var dev, major, minor int32
		var mem uint64
		name := make([]byte, 256)
		if err := d.check("cuDeviceGet", d.deviceGet(&dev, i)); err != nil {
			return nil, err
		}
		if err := d.check("cuDeviceGetAttribute", d.deviceAttr(&major, attrComputeMajor, dev)); err != nil {
			return nil, err
		}
		if err := d.check("cuDeviceGetAttribute", d.deviceAttr(&minor, attrComputeMinor, dev)); err != nil {
			return nil, err
		}
		if err := d.check("cuDeviceGetName", d.deviceName(&name[0], int32(len(name)-1), dev)); err != nil {
			return nil, err
		}
		if err := d.check("cuDeviceTotalMem", d.deviceTotalMem(&mem, dev)); err != nil {
			return nil, err
		}
		out = append(out, DeviceInfo{Ordinal: int(i), Name: gostring(&name[0]), Major: int(major), Minor: int(minor), Memory: mem})
	}
	return out, nil
}

// Context is a device's primary context, made current on the calling OS
// thread by Bind.
type Context struct {
	d   *Driver
	dev int32
	ctx uintptr
}

// Open retains device ordinal's primary context.
func (d *Driver) Open(ordinal int) (*Context, error) {
	var dev int32
	if err := d.check("cuDeviceGet", d.deviceGet(&dev, int32(ordinal))); err != nil {
		return nil, err
	}
	c := &Context{d: d, dev: dev}
	if err := d.check("cuDevicePrimaryCtxRetain", d.primaryRetain(&c.ctx, dev)); err != nil {
		return nil, err
	}
	return c, nil
}

// Bind locks the goroutine to its OS thread and makes the context current
// there; call the returned func when done with the device.
func (c *Context) Bind() (func(), error) {
	runtime.LockOSThread()
	if err := c.d.check("cuCtxSetCurrent", c.d.ctxSetCurrent(c.ctx)); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return runtime.UnlockOSThread, nil
}

// Close releases the primary context.
func (c *Context) Close() error {
	return c.d.check("cuDevicePrimaryCtxRelease", c.d.primaryRelease(c.dev))
}

// MemInfo is the device's free and total memory, in bytes.
func (c *Context) MemInfo() (free, total uint64, err error) {
	err = c.d.check("cuMemGetInfo", c.d.memGetInfo(&free, &total))
	return free, total, err
}

// Alloc allocates bytes of device memory.
func (c *Context) Alloc(bytes uint64) (uint64, error) {
	var p uint64
	err := c.d.check(fmt.Sprintf("cuMemAlloc(%d bytes)", bytes), c.d.memAlloc(&p, bytes))
	return p, err
}

// Free frees device memory from Alloc.
func (c *Context) Free(p uint64) error { return c.d.check("cuMemFree", c.d.memFree(p)) }

// CopyIn copies bytes from host memory to the device.
func (c *Context) CopyIn(dst uint64, src unsafe.Pointer, bytes uint64) error {
	return c.d.check("cuMemcpyHtoD", c.d.memcpyHtoD(dst, src, bytes))
}

// CopyOut copies bytes from the device to host memory.
func (c *Context) CopyOut(dst unsafe.Pointer, src uint64, bytes uint64) error {
	return c.d.check("cuMemcpyDtoH", c.d.memcpyDtoH(dst, src, bytes))
}

// Copy copies bytes within the device.
func (c *Context) Copy(dst, src uint64, bytes uint64) error {
	return c.d.check("cuMemcpyDtoD", c.d.memcpyDtoD(dst, src, bytes))
}

// Zero sets n 32-bit words to zero.
func (c *Context) Zero(dst uint64, n uint64) error {
	return c.d.check("cuMemsetD32", c.d.memsetD32(dst, 0, n))
}

// Sync waits for every launched kernel.
func (c *Context) Sync() error { return c.d.check("cuCtxSynchronize", c.d.ctxSynchronize()) }

// Module is loaded PTX.
type Module struct {
	c   *Context
	mod uintptr
}

// Load loads NUL-terminated PTX (the driver JIT-compiles it for the
// device).
func (c *Context) Load(ptx []byte) (*Module, error) {
	m := &Module{c: c}
	err := c.d.check("cuModuleLoadData", c.d.moduleLoadData(&m.mod, unsafe.Pointer(&ptx[0])))
	runtime.KeepAlive(ptx)
	return m, err
}

// Function finds a kernel by name.
func (m *Module) Function(name string) (uintptr, error) {
	var fn uintptr
	err := m.c.d.check("cuModuleGetFunction("+name+")", m.c.d.moduleGetFunc(&fn, m.mod, name))
	return fn, err
}

// Launch runs fn on a 1-D grid; params points at an array of pointers to
// the kernel's arguments (cuLaunchKernel's kernelParams).
func (c *Context) Launch(fn uintptr, grid, block uint32, params unsafe.Pointer) error {
	return c.d.check("cuLaunchKernel", c.d.launchKernel(fn, grid, 1, 1, block, 1, 1, 0, 0, params, nil))
}
