package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// The interop fixture of scripts/golden/check_safetensors.py: the golden
// generator of the shared contract, with num_batches_tracked = 1000 + j.

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func gen(key, i uint64) float64 {
	return float64(splitmix64(key+i)>>40)/16777216*2 - 1
}

type namesDoc struct {
	Model      string `json:"model"`
	NumClasses int    `json:"num_classes"`
	Tensors    []struct {
		Name  string `json:"name"`
		Shape []int  `json:"shape"`
		Dtype string `json:"dtype"`
	} `json:"tensors"`
}

// interopFixture builds the fixture for the state_dict described by the
// names file (FEDSCALE_SAFETENSORS_NAMES, else torchvision's resnet18 with
// 62 classes as committed in testdata).
func interopFixture(t *testing.T) (tensor.List, namesDoc) {
	t.Helper()
	path := os.Getenv("FEDSCALE_SAFETENSORS_NAMES")
	if path == "" {
		path = filepath.Join("testdata", "resnet18_62.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc namesDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	l := make(tensor.List, len(doc.Tensors))
	for j, e := range doc.Tensors {
		x := tensor.New(e.Name, e.Shape...)
		key := uint64(7)<<32 + uint64(j)<<20
		rest := 1
		for _, d := range e.Shape[min(1, len(e.Shape)):] {
			rest *= d
		}
		for i := range x.Data {
			v := gen(key, uint64(i))
			switch {
			case model.IsBatchCounter(e.Name):
				v = float64(1000 + j)
			case len(e.Shape) >= 2:
				v /= math.Sqrt(float64(rest))
			case hasSuffix(e.Name, "running_mean"):
				v *= 0.1
			case hasSuffix(e.Name, "running_var"), hasSuffix(e.Name, "weight"):
				v = 1 + 0.25*v
			case hasSuffix(e.Name, "bias"):
				v *= 0.1
			}
			x.Data[i] = float32(v)
		}
		l[j] = x
	}
	return l, doc
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// TestTorchInterop writes the fixture, reads it back and checks names,
// shapes and dtypes against torchvision's state_dict as committed. Driven
// by scripts/golden/check_safetensors.py roundtrip (make golden-check), it
// also reads PyTorch's file of the same fixture value for value
// (FEDSCALE_SAFETENSORS_FROM_TORCH), requires Go's bytes to equal it, and
// leaves Go's file for PyTorch to load (FEDSCALE_SAFETENSORS_FOR_TORCH).
func TestTorchInterop(t *testing.T) {
	want, doc := interopFixture(t)
	meta := map[string]string{"format": "pt"}
	path := os.Getenv("FEDSCALE_SAFETENSORS_FOR_TORCH")
	if path == "" {
		path = filepath.Join(t.TempDir(), "model.safetensors")
	}
	if err := WriteFile(path, want, meta); err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Match(want, got)
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, want, m)
	// Each entry is stored with the dtype PyTorch's state_dict has.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint64(b))
	var header map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	for _, e := range doc.Tensors {
		var info struct{ Dtype string }
		json.Unmarshal(header[e.Name], &info)
		if info.Dtype != e.Dtype {
			t.Errorf("%s stored as %s, PyTorch has %s", e.Name, info.Dtype, e.Dtype)
		}
	}
	t.Logf("%s(num_classes=%d): %d tensors, %d bytes", doc.Model, doc.NumClasses, len(want), len(b))

	from := os.Getenv("FEDSCALE_SAFETENSORS_FROM_TORCH")
	if from == "" {
		return
	}
	torch, _, err := ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	m, err = Match(want, torch)
	if err != nil {
		t.Fatalf("PyTorch's file: %v", err)
	}
	checkEqual(t, want, m)
	tb, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var ours bytes.Buffer
	if err := Write(&ours, want, meta); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours.Bytes(), tb) {
		t.Errorf("Go's encoding (%d bytes) differs from PyTorch's file (%d bytes)", ours.Len(), len(tb))
	}
}

func checkEqual(t *testing.T, want, got tensor.List) {
	t.Helper()
	for i := range want {
		for j := range want[i].Data {
			if math.Float32bits(want[i].Data[j]) != math.Float32bits(got[i].Data[j]) {
				t.Fatalf("%s[%d] = %v, want %v", want[i].Name, j, got[i].Data[j], want[i].Data[j])
			}
		}
	}
}
