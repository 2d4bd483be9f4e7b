// Host emulation of the CUDA C that kernels.cu uses, for tests only: the
// kernels compile as plain C++ with g++ and run thread by thread over the
// grid (they have no barriers, shared memory or atomics, so any order of
// threads is a valid schedule). Never part of a shipped binary.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <map>
#include <string>
#include <utility>

struct fs_dim3 { unsigned x, y, z; };
static fs_dim3 threadIdx, blockIdx, blockDim;
#define __global__
#define __device__ static inline
using std::max;
using std::min;
static inline float __int_as_float(int v) { float f; memcpy(&f, &v, 4); return f; }
