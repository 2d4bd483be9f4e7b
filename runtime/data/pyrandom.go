package data

import "fmt"

// pyRandom is CPython's random.Random: the MT19937 Mersenne Twister, seeded
// from an integer the way random.seed(n) does (init_by_array over the
// 32-bit words of |n|), with the integer draws that random.shuffle uses.
// It exists so that FedScale's DataPartitioner, which shuffles sample
// indices with random.Random(10), can be reproduced index for index.
type pyRandom struct {
	mt  [624]uint32
	idx int
}

// newPyRandom returns random.Random(seed) for a non-negative seed below
// 2^64.
func newPyRandom(seed uint64) *pyRandom {
	r := &pyRandom{}
	key := []uint32{uint32(seed)}
	if hi := uint32(seed >> 32); hi != 0 {
		key = append(key, hi)
	}
	r.initByArray(key)
	return r
}

func (r *pyRandom) initGenrand(s uint32) {
	r.mt[0] = s
	for i := 1; i < len(r.mt); i++ {
		r.mt[i] = 1812433253*(r.mt[i-1]^(r.mt[i-1]>>30)) + uint32(i)
	}
	r.idx = len(r.mt)
}

// initByArray is init_by_array of the MT19937 reference code, which
// CPython's random_seed calls with the absolute value's 32-bit words, least
// significant first (a single zero word for 0).
func (r *pyRandom) initByArray(key []uint32) {
	const n = 624
	r.initGenrand(19650218)
	i, j := 1, 0
	k := max(n, len(key))
	for ; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i++
		j++
		if i >= n {
			r.mt[0] = r.mt[n-1]
			i = 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k = n - 1; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= n {
			r.mt[0] = r.mt[n-1]
			i = 1
		}
	}
	r.mt[0] = 0x80000000
	r.idx = n
}

// uint32 is genrand_uint32.
func (r *pyRandom) uint32() uint32 {
	const (
		n, m      = 624, 397
		upperMask = 0x80000000
		lowerMask = 0x7fffffff
		matrixA   = 0x9908b0df
	)
	if r.idx >= n {
		for kk := 0; kk < n; kk++ {
			y := (r.mt[kk] & upperMask) | (r.mt[(kk+1)%n] & lowerMask)
			v := r.mt[(kk+m)%n] ^ (y >> 1)
			if y&1 != 0 {
				v ^= matrixA
			}
			r.mt[kk] = v
		}
		r.idx = 0
	}
	y := r.mt[r.idx]
	r.idx++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// below is Random._randbelow_with_getrandbits(n) for 1 <= n < 2^32:
// getrandbits(k) with k = n.bit_length(), redrawn until below n.
func (r *pyRandom) below(n uint32) uint32 {
	k := 0
	for v := n; v != 0; v >>= 1 {
		k++
	}
	for {
		// getrandbits(k) for k <= 32 keeps the top k bits of one word.
		if v := r.uint32() >> (32 - k); v < n {
			return v
		}
	}
}

// shuffle is random.shuffle on a list of len(x) elements.
func (r *pyRandom) shuffle(x []int32) {
	for i := len(x) - 1; i > 0; i-- {
		j := r.below(uint32(i + 1))
		x[i], x[j] = x[j], x[i]
	}
}

// FedScalePartitionSeed is the seed FedScale's DataPartitioner gives its
// random.Random (fedscale/dataloaders/divide_data.py): every job splits the
// same way.
const FedScalePartitionSeed = 10

// UniformPartition reproduces FedScale's DataPartitioner.uniform_partition,
// used when a job gives no data_map_file: the indices 0..n-1 are shuffled
// with random.Random(FedScalePartitionSeed) and cut into clients parts of
// int(1/clients * n) samples each, in order; the remainder belongs to no
// client. Every part is returned in shuffled order, as FedScale keeps it.
func UniformPartition(n, clients int) ([][]int32, error) {
	if clients < 1 {
		return nil, fmt.Errorf("uniform partition: %d clients", clients)
	}
	if n < 0 || n > 1<<31-1 {
		return nil, fmt.Errorf("uniform partition: %d samples", n)
	}
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	newPyRandom(FedScalePartitionSeed).shuffle(idx)
	// Python computes int(1./num_clients * data_len) in doubles; so do we
	// (one division and one product, each rounded: no fused operation).
	inv := 1.0 / float64(clients)
	partLen := int(inv * float64(n))
	if partLen < 1 {
		return nil, fmt.Errorf("uniform partition: %d samples cannot give each of %d clients one", n, clients)
	}
	parts := make([][]int32, clients)
	for k := range parts {
		parts[k] = idx[k*partLen : (k+1)*partLen : (k+1)*partLen]
	}
	return parts, nil
}
