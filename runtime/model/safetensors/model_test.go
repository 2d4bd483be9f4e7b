package safetensors

import (
	"os"
	"reflect"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
)

// TestRuntimeResNet18 checks the runtime's resnet18 against torchvision's
// state_dict as committed in testdata (names, order, shapes, and the dtype
// each entry is stored with), so its model files load into
// torchvision.models.resnet18(num_classes=62). With
// FEDSCALE_SAFETENSORS_MODEL_FOR_TORCH set (check_safetensors.py
// roundtrip) it leaves an initialised model there for PyTorch to load, and
// with FEDSCALE_SAFETENSORS_FROM_TORCH it matches PyTorch's file against
// the runtime's model as model_init_file does.
func TestRuntimeResNet18(t *testing.T) {
	spec := model.Spec{Name: "resnet18", Channels: 3, Height: 32, Width: 32, Classes: 62}
	if err := model.CheckName(spec.Name); err != nil {
		t.Skipf("the runtime has no resnet18 yet: %v", err)
	}
	_, doc := interopFixture(t)
	if doc.Model != spec.Name || doc.NumClasses != spec.Classes {
		t.Skipf("the names file describes %s(num_classes=%d)", doc.Model, doc.NumClasses)
	}
	params, err := model.Init(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(params) != len(doc.Tensors) {
		t.Errorf("%d tensors, torchvision has %d", len(params), len(doc.Tensors))
	}
	for i := 0; i < min(len(params), len(doc.Tensors)); i++ {
		p, e := params[i], doc.Tensors[i]
		if p.Name != e.Name || !reflect.DeepEqual(append([]int{}, p.Shape...), append([]int{}, e.Shape...)) {
			t.Errorf("entry %d: %s %v, torchvision has %s %v", i, p.Name, p.Shape, e.Name, e.Shape)
		}
		if dt := map[bool]string{true: "I64", false: "F32"}[model.IsBatchCounter(p.Name)]; dt != e.Dtype {
			t.Errorf("%s would be stored as %s, torchvision has %s", p.Name, dt, e.Dtype)
		}
	}
	// A file PyTorch wrote fits the runtime's model as model_init_file
	// needs it to.
	if from := os.Getenv("FEDSCALE_SAFETENSORS_FROM_TORCH"); from != "" {
		l, _, err := ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		zeros, err := model.Zeros(spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Match(zeros, l); err != nil {
			t.Errorf("PyTorch's resnet18 does not fit the runtime's: %v", err)
		}
	}
	if path := os.Getenv("FEDSCALE_SAFETENSORS_MODEL_FOR_TORCH"); path != "" {
		if err := WriteFile(path, params, map[string]string{"format": "pt", "model": spec.Name}); err != nil {
			t.Fatal(err)
		}
	}
}
