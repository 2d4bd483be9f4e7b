package data

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// pilFixtures is testdata/pil_fixtures.json, written by
// testdata/gen_pil_fixtures.py with Pillow and torchvision.
type pilFixtures struct {
	Pillow, Torchvision string
	Images              map[string]struct {
		W, H int
		Pix  string
	}
	Resize []struct {
		In   string
		OutW int `json:"out_w"`
		OutH int `json:"out_h"`
		Out  string
	}
	Femnist, Mnist []struct {
		In   string
		Flip bool
		Out  string
	}
	Cifar []struct {
		In        string
		Top, Left int
		Flip      bool
		Out       string
	}
}

var (
	fixturesOnce sync.Once
	fixtures     pilFixtures
	fixturesErr  error
)

func loadFixtures(t *testing.T) *pilFixtures {
	t.Helper()
	fixturesOnce.Do(func() {
		b, err := os.ReadFile(filepath.Join("testdata", "pil_fixtures.json"))
		if err != nil {
			fixturesErr = err
			return
		}
		fixturesErr = json.Unmarshal(b, &fixtures)
	})
	if fixturesErr != nil {
		t.Fatal(fixturesErr)
	}
	return &fixtures
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func floats(t *testing.T, s string) []float32 {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// The resize matches Pillow's Image.resize(BILINEAR) byte for byte:
// upscaling (28 to 32, FEMNIST as fsdata writes it), downscaling with its
// widened filter (128 to 32, FEMNIST's originals), one axis only, odd
// sizes, and the same-size copy.
func TestResizeMatchesPillow(t *testing.T) {
	fx := loadFixtures(t)
	if len(fx.Resize) < 30 {
		t.Fatalf("only %d resize cases in the fixture", len(fx.Resize))
	}
	for _, c := range fx.Resize {
		img := fx.Images[c.In]
		r, err := getResizer(img.W, img.H, c.OutW, c.OutH)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]uint8, c.OutW*c.OutH)
		r.resize(got, unhex(t, img.Pix))
		if want := unhex(t, c.Out); !slices.Equal(got, want) {
			diff := 0
			for i := range got {
				if got[i] != want[i] {
					diff++
				}
			}
			t.Errorf("%s %dx%d -> %dx%d: %d of %d pixels differ from Pillow %s", c.In, img.W, img.H, c.OutW, c.OutH, diff, len(got), fx.Pillow)
		}
	}
}

// memSplit makes an in-memory split of the given images for tests.
func memSplit(pix []uint8, c, h, w int, labels []int32) *Split {
	return newMemSplit("mem", "mem", pix, c, h, w, labels, appendSamplePaths(nil, "mem", len(labels)))
}

// The femnist and Mnist pipelines give torchvision's tensors bit for bit:
// RGB conversion (femnist), Pillow's resize, the flip, ToTensor and
// Normalize in float32.
func TestPipelineMatchesTorchvision(t *testing.T) {
	fx := loadFixtures(t)
	for _, tc := range []struct {
		dataSet string
		cases   []struct {
			In   string
			Flip bool
			Out  string
		}
	}{{"femnist", fx.Femnist}, {"Mnist", fx.Mnist}} {
		p, err := PipelineFor(tc.dataSet)
		if err != nil {
			t.Fatal(err)
		}
		if len(tc.cases) < 2 {
			t.Fatalf("%s: only %d cases in the fixture", tc.dataSet, len(tc.cases))
		}
		for _, c := range tc.cases {
			img := fx.Images[c.In]
			s := memSplit(unhex(t, img.Pix), 1, img.H, img.W, []int32{3})
			want := floats(t, c.Out)
			if len(want) != p.SampleSize() {
				t.Fatalf("%s %s: fixture has %d values, pipeline makes %d", tc.dataSet, c.In, len(want), p.SampleSize())
			}
			got := make([]float32, p.SampleSize())
			pix, _, err := s.image(0, nil)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := getResizer(img.W, img.H, p.Width, p.Height)
			if err != nil {
				t.Fatal(err)
			}
			small := make([]uint8, p.Width*p.Height)
			rs.resize(small, pix)
			p.sample(got, small, 1, Augment{Top: p.Pad, Left: p.Pad, Flip: c.Flip})
			if !c.Flip {
				// The evaluation path through Batch gives the same.
				viaBatch := make([]float32, p.SampleSize())
				labels, err := p.Batch(s, []int32{0}, viaBatch, nil)
				if err != nil || labels[0] != 3 || !slices.Equal(viaBatch, got) {
					t.Errorf("%s %s: Batch differs from sample (labels %v, err %v)", tc.dataSet, c.In, labels, err)
				}
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Errorf("%s %s flip=%v: value %d is %v, torchvision %s gives %v", tc.dataSet, c.In, c.Flip, i, got[i], fx.Torchvision, want[i])
					break
				}
			}
		}
	}
}

// CIFAR-10's training geometry (zero padding 4, crop at the drawn offsets,
// flip) and ToTensor give torchvision's tensors bit for bit.
func TestCIFARGeometryMatchesTorchvision(t *testing.T) {
	fx := loadFixtures(t)
	p, err := PipelineFor("cifar10")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fx.Cifar {
		got := make([]float32, p.SampleSize())
		p.sample(got, unhex(t, c.In), 3, Augment{Top: c.Top, Left: c.Left, Flip: c.Flip})
		want := floats(t, c.Out)
		if !slices.EqualFunc(got, want, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
			t.Errorf("crop (%d,%d) flip %v differs from torchvision", c.Top, c.Left, c.Flip)
		}
	}
}

func TestPipelineTable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		c, h, w, k int
		pad        int
		flip, norm bool
	}{
		{"femnist", 3, 32, 32, 62, 0, true, true},
		{"cifar10", 3, 32, 32, 10, 4, true, false},
		{"Mnist", 1, 32, 32, 10, 0, true, true},
		{"emnist", 1, 28, 28, 47, 0, false, false},
	} {
		p, err := PipelineFor(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if p.Channels != tc.c || p.Height != tc.h || p.Width != tc.w || p.Classes != tc.k || p.Pad != tc.pad || p.Flip != tc.flip || (p.Mean != nil) != tc.norm {
			t.Errorf("%s: %+v", tc.name, p)
		}
	}
	for _, tc := range []struct{ name, want string }{
		{"cifar", "supported: Mnist, cifar10, emnist, femnist"},
		{"mnist", `FedScale spells it "Mnist"`},
		{"CIFAR10", `FedScale spells it "cifar10"`},
		{"synthetic", "grey_input"},
	} {
		if _, err := PipelineFor(tc.name); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PipelineFor(%q) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// Training batches are a pure function of the augmentation stream's seed;
// evaluation ignores it; the grey pipeline is the old pixel/255 path.
func TestPipelineBatchDeterminism(t *testing.T) {
	const n = 6
	pix := make([]uint8, n*CIFAR10ImageBytes)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	labels := []int32{0, 1, 2, 3, 4, 5}
	s := memSplit(pix, 3, 32, 32, labels)
	p, _ := PipelineFor("cifar10")
	idx := []int32{5, 0, 3, 3, 1}
	run := func(seed uint64) []float32 {
		dst := make([]float32, len(idx)*p.SampleSize())
		got, err := p.Batch(s, idx, dst, rand.New(rand.NewPCG(seed, 9)))
		if err != nil {
			t.Fatal(err)
		}
		for k, i := range idx {
			if got[k] != labels[i] {
				t.Fatalf("labels %v", got)
			}
		}
		return dst
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different batches")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same batch")
	}
	eval := make([]float32, len(idx)*p.SampleSize())
	if _, err := p.Batch(s, idx, eval, nil); err != nil {
		t.Fatal(err)
	}
	for k, i := range idx {
		for j := range CIFAR10ImageBytes {
			if eval[k*CIFAR10ImageBytes+j] != float32(pix[int(i)*CIFAR10ImageBytes+j])/255 {
				t.Fatalf("evaluation of sample %d is not the image /255 at %d", i, j)
			}
		}
	}

	g := GreyPipeline("x", 4, 5)
	gs := memSplit([]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 255}, 1, 4, 5, []int32{1})
	dst := make([]float32, 20)
	if _, err := g.Batch(gs, []int32{0}, dst, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	for j, v := range dst {
		if v != byteToUnit[gs.mem[j]] {
			t.Fatalf("grey value %d: %v", j, v)
		}
	}
}

// Every augmentation a draw can make stays inside the padded image, and
// draws cover all crop offsets and both flips.
func TestAugmentDraws(t *testing.T) {
	p, _ := PipelineFor("cifar10")
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[Augment]bool{}
	for range 5000 {
		a := p.draw(rng)
		if a.Top < 0 || a.Top > 2*p.Pad || a.Left < 0 || a.Left > 2*p.Pad {
			t.Fatalf("draw %+v outside the padding", a)
		}
		seen[a] = true
	}
	if len(seen) != 9*9*2 {
		t.Errorf("%d distinct augmentations, want %d", len(seen), 9*9*2)
	}
	f, _ := PipelineFor("femnist")
	for range 100 {
		if a := f.draw(rng); a.Top != 0 || a.Left != 0 {
			t.Fatalf("femnist crops: %+v", a)
		}
	}
}
