package aggregate

import (
	"fmt"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

func BenchmarkTuneBlockLen(b *testing.B) {
	updates := make([]Update, 100)
	for i := range updates {
		l := tensor.List{tensor.New("a", 1_000_000)}
		fill(l[0].Data, uint64(i+1))
		updates[i] = Update{ClientID: int64(i), Weights: l, NumSamples: int64(i + 1)}
	}
	dst := updates[0].Weights.ZerosLike()
	for _, bl := range []int{1024, 4096, 16384, 65536} {
		b.Run(fmt.Sprint(bl), func(b *testing.B) {
			defer func(old int) { blockLen = old }(blockLen)
			blockLen = bl
			b.SetBytes(101 * 1_000_000 * 4)
			for b.Loop() {
				if err := WeightedMean(dst, updates); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
