package aggregate

import (
	"fmt"
	"math"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}


func sum8(acc []float64, src [][]float32, w []float64) {
	n := len(acc)
	i := 0
	for ; i+8 <= len(src); i += 8 {
		a, b, c, d := src[i][:n], src[i+1][:n], src[i+2][:n], src[i+3][:n]
		e, f, g, h := src[i+4][:n], src[i+5][:n], src[i+6][:n], src[i+7][:n]
		wa, wb, wc, wd, we, wf, wg, wh := w[i], w[i+1], w[i+2], w[i+3], w[i+4], w[i+5], w[i+6], w[i+7]
		for j := range acc {
			acc[j] = acc[j] + float64(wa*float64(a[j])) + float64(wb*float64(b[j])) +
				float64(wc*float64(c[j])) + float64(wd*float64(d[j])) + float64(we*float64(e[j])) + float64(wf*float64(f[j])) +
				float64(wg*float64(g[j])) + float64(wh*float64(h[j]))
		}
	}
	for ; i < len(src); i++ {
		a := src[i][:n]
		for j := range acc {
			acc[j] = acc[j] + float64(w[i]*float64(a[j]))
		}
	}
}

func sum4(acc []float64, src [][]float32, w []float64) {
	n := len(acc)
	i := 0
	for ; i+4 <= len(src); i += 4 {
		a, b, c, d := src[i][:n], src[i+1][:n], src[i+2][:n], src[i+3][:n]
		wa, wb, wc, wd := w[i], w[i+1], w[i+2], w[i+3]
		for j := range acc {
			acc[j] = acc[j] + float64(wa*float64(a[j])) + float64(wb*float64(b[j])) +
				float64(wc*float64(c[j])) + float64(wd*float64(d[j]))
		}
	}
}

func sum4fma(acc []float64, src [][]float32, w []float64) {
	n := len(acc)
	i := 0
	for ; i+4 <= len(src); i += 4 {
		a, b, c, d := src[i][:n], src[i+1][:n], src[i+2][:n], src[i+3][:n]
		wa, wb, wc, wd := w[i], w[i+1], w[i+2], w[i+3]
		for j := range acc {
			acc[j] = math.FMA(wd, float64(d[j]), math.FMA(wc, float64(c[j]), math.FMA(wb, float64(b[j]), math.FMA(wa, float64(a[j]), acc[j]))))
		}
	}
}

func sum4x2(acc []float64, src [][]float32, w []float64) {
	n := len(acc)
	i := 0
	for ; i+4 <= len(src); i += 4 {
		a, b, c, d := src[i][:n], src[i+1][:n], src[i+2][:n], src[i+3][:n]
		wa, wb, wc, wd := w[i], w[i+1], w[i+2], w[i+3]
		for j := 0; j+2 <= n; j += 2 {
			acc[j] = acc[j] + float64(wa*float64(a[j])) + float64(wb*float64(b[j])) +
				float64(wc*float64(c[j])) + float64(wd*float64(d[j]))
			acc[j+1] = acc[j+1] + float64(wa*float64(a[j+1])) + float64(wb*float64(b[j+1])) +
				float64(wc*float64(c[j+1])) + float64(wd*float64(d[j+1]))
		}
	}
}

func sum4x4(acc []float64, src [][]float32, w []float64) {
	n := len(acc)
	i := 0
	for ; i+4 <= len(src); i += 4 {
		a, b, c, d := src[i][:n], src[i+1][:n], src[i+2][:n], src[i+3][:n]
		wa, wb, wc, wd := w[i], w[i+1], w[i+2], w[i+3]
		for j := 0; j+4 <= n; j += 4 {
			acc[j] = acc[j] + float64(wa*float64(a[j])) + float64(wb*float64(b[j])) + float64(wc*float64(c[j])) + float64(wd*float64(d[j]))
			acc[j+1] = acc[j+1] + float64(wa*float64(a[j+1])) + float64(wb*float64(b[j+1])) + float64(wc*float64(c[j+1])) + float64(wd*float64(d[j+1]))
			acc[j+2] = acc[j+2] + float64(wa*float64(a[j+2])) + float64(wb*float64(b[j+2])) + float64(wc*float64(c[j+2])) + float64(wd*float64(d[j+2]))
			acc[j+3] = acc[j+3] + float64(wa*float64(a[j+3])) + float64(wb*float64(b[j+3])) + float64(wc*float64(c[j+3])) + float64(wd*float64(d[j+3]))
		}
	}
}

func BenchmarkTuneKernel(b *testing.B) {
	const k = 96
	const n = 1 << 20
	src := make([][]float32, k)
	w := make([]float64, k)
	for i := range src {
		src[i] = make([]float32, n)
		fill(src[i], uint64(i+1))
		w[i] = float64(i + 1)
	}
	for _, bl := range []int{4096, 16384, 32768} {
		for _, kern := range []struct {
			name string
			f    func([]float64, [][]float32, []float64)
		}{{"g4", sum4}, {"g4x2", sum4x2}, {"g4x4", sum4x4}} {
			b.Run(fmt.Sprintf("%s/b%d", kern.name, bl), func(b *testing.B) {
				acc := make([]float64, bl)
				sl := make([][]float32, k)
				b.SetBytes(int64(k * n * 4))
				c0 := cpuNow()
				defer func() { b.ReportMetric(float64(k*n*4)*float64(b.N)/float64(cpuNow()-c0), "cpuGB/s") }()
				for b.Loop() {
					for lo := 0; lo < n; lo += bl {
						for i := range sl {
							sl[i] = src[i][lo : lo+bl]
						}
						kern.f(acc, sl, w)
					}
				}
			})
		}
	}
}
