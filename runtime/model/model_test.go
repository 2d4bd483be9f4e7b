package model

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

func TestSupported(t *testing.T) {
	got := Supported()
	if want := []string{"lenet5", "logistic", "lr", "mlp", "mobilenet_v2", "resnet18", "resnet34", "resnet50",
		"shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "svm"}; !slices.Equal(got, want) {
		t.Fatalf("Supported() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if Supported()[0] != "lenet5" {
		t.Error("Supported returned its internal slice")
	}
}

func TestLayouts(t *testing.T) {
	type shape struct {
		name  string
		shape []int
	}
	tests := []struct {
		spec Spec
		want []shape
	}{
		{Spec{Logistic, 1, 28, 28, 62}, []shape{{"fc.weight", []int{62, 784}}, {"fc.bias", []int{62}}}},
		{Spec{MLP, 1, 28, 28, 10}, []shape{
			{"fc1.weight", []int{200, 784}}, {"fc1.bias", []int{200}},
			{"fc2.weight", []int{200, 200}}, {"fc2.bias", []int{200}},
			{"fc3.weight", []int{10, 200}}, {"fc3.bias", []int{10}},
		}},
		{Spec{LeNet5, 1, 28, 28, 62}, []shape{
			{"conv1.weight", []int{6, 1, 5, 5}}, {"conv1.bias", []int{6}},
			{"conv2.weight", []int{16, 6, 5, 5}}, {"conv2.bias", []int{16}},
			{"fc1.weight", []int{120, 400}}, {"fc1.bias", []int{120}},
			{"fc2.weight", []int{84, 120}}, {"fc2.bias", []int{84}},
			{"fc3.weight", []int{62, 84}}, {"fc3.bias", []int{62}},
		}},
		// CIFAR-sized: 32 → 16 → 12 → 6.
		{Spec{LeNet5, 3, 32, 32, 10}, []shape{
			{"conv1.weight", []int{6, 3, 5, 5}}, {"conv1.bias", []int{6}},
			{"conv2.weight", []int{16, 6, 5, 5}}, {"conv2.bias", []int{16}},
			{"fc1.weight", []int{120, 576}}, {"fc1.bias", []int{120}},
			{"fc2.weight", []int{84, 120}}, {"fc2.bias", []int{84}},
			{"fc3.weight", []int{10, 84}}, {"fc3.bias", []int{10}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.spec.String(), func(t *testing.T) {
			p, err := Init(tc.spec, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(p) != len(tc.want) {
				t.Fatalf("%d tensors, want %d", len(p), len(tc.want))
			}
			for i, w := range tc.want {
				if p[i].Name != w.name || !slices.Equal(p[i].Shape, w.shape) || len(p[i].Data) != tensor.Size(w.shape) {
					t.Errorf("tensor %d: %s %v (%d values), want %s %v", i, p[i].Name, p[i].Shape, len(p[i].Data), w.name, w.shape)
				}
			}
			z, err := Zeros(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := z.CheckCompatible(p); err != nil {
				t.Errorf("Zeros and Init disagree: %v", err)
			}
		})
	}
}

func TestLeNetFeatures(t *testing.T) {
	tests := []struct{ h, w, fh, fw int }{
		{28, 28, 5, 5}, {32, 32, 6, 6}, {12, 12, 1, 1}, {13, 30, 1, 5}, {11, 28, 0, 0}, {28, 1, 0, 0}, {0, 0, 0, 0},
	}
	for _, tc := range tests {
		if fh, fw := LeNetFeatures(tc.h, tc.w); fh != tc.fh || fw != tc.fw {
			t.Errorf("LeNetFeatures(%d, %d) = %d, %d; want %d, %d", tc.h, tc.w, fh, fw, tc.fh, tc.fw)
		}
	}
}

func TestInitErrors(t *testing.T) {
	tests := []struct {
		spec    Spec
		wantErr string
	}{
		{Spec{"resnet19", 3, 32, 32, 10}, `unknown model "resnet19" (supported: lenet5, logistic, lr, mlp, mobilenet_v2, resnet18, resnet34, resnet50, shufflenet_v2_x0_5, shufflenet_v2_x1_0, shufflenet_v2_x1_5, shufflenet_v2_x2_0, svm)`},
		{Spec{ResNet18, 1, 28, 28, 10}, "model resnet18 takes 3-channel (RGB) images, the data has 1 channel(s) of 28x28"},
		{Spec{MobileNetV2, 4, 32, 32, 10}, "takes 3-channel (RGB) images"},
		{Spec{ResNet50, 3, 224, 224, 1 << 22}, "parameters"},
		{Spec{"", 1, 28, 28, 10}, `unknown model ""`},
		{Spec{MLP, 0, 28, 28, 10}, "every dimension must be at least 1"},
		{Spec{MLP, 1, -28, 28, 10}, "every dimension must be at least 1"},
		{Spec{Logistic, 1, 28, 28, 1}, "1 classes: need at least 2"},
		{Spec{LeNet5, 1, 11, 28, 10}, "input 11x28 is too small: lenet5 needs at least 12x12"},
		{Spec{MLP, 1 << 20, 1 << 20, 1 << 20, 10}, "exceeds"},
		{Spec{Logistic, 1, 4096, 4096, 1 << 16}, "parameters exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.spec.String(), func(t *testing.T) {
			if _, err := Init(tc.spec, 1); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Init: error %v, want one containing %q", err, tc.wantErr)
			}
			if err := tc.spec.Validate(); err == nil {
				t.Error("Validate accepted the spec")
			}
			if _, err := Zeros(tc.spec); err == nil {
				t.Error("Zeros accepted the spec")
			}
		})
	}
	if got := (Spec{"resnet19", 3, 32, 32, 10}).Validate().Error(); got != `unknown model "resnet19" (supported: lenet5, logistic, lr, mlp, mobilenet_v2, resnet18, resnet34, resnet50, shufflenet_v2_x0_5, shufflenet_v2_x1_0, shufflenet_v2_x1_5, shufflenet_v2_x2_0, svm)` {
		t.Errorf("unknown model message %q", got)
	}
}

// TestInitValues checks determinism, seed sensitivity and PyTorch's bounds.
func TestInitValues(t *testing.T) {
	spec := Spec{LeNet5, 1, 28, 28, 10}
	a, err := Init(spec, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Init(spec, 5)
	c, _ := Init(spec, 6)
	fanIn := []int{25, 25, 150, 150, 400, 400, 120, 120, 84, 84}
	for i := range a {
		if !slices.Equal(a[i].Data, b[i].Data) {
			t.Errorf("%s differs between two inits with one seed", a[i].Name)
		}
		if slices.Equal(a[i].Data, c[i].Data) {
			t.Errorf("%s is the same for seeds 5 and 6", a[i].Name)
		}
		bound := 1 / math.Sqrt(float64(fanIn[i]))
		var lo, hi float64
		for _, v := range a[i].Data {
			lo, hi = min(lo, float64(v)), max(hi, float64(v))
		}
		if lo < -bound || hi > bound {
			t.Errorf("%s spans [%v, %v], outside ±%v", a[i].Name, lo, hi, bound)
		}
		// A uniform draw of this size should reach well into both halves.
		if len(a[i].Data) >= 16 && (lo > -bound/2 || hi < bound/2) {
			t.Errorf("%s spans only [%v, %v] of ±%v", a[i].Name, lo, hi, bound)
		}
	}
	// Tensors draw from separate streams: two weights of equal size must
	// not repeat each other.
	if slices.Equal(a[1].Data, a[3].Data[:6]) {
		t.Error("conv1.bias repeats conv2.bias: streams are not per tensor")
	}
	// Class count changes only the last layer, and the streams are per
	// tensor, so the shared layers keep their values.
	d, _ := Init(Spec{LeNet5, 1, 28, 28, 62}, 5)
	for i := 0; i < 8; i++ {
		if !slices.Equal(a[i].Data, d[i].Data) {
			t.Errorf("%s changed with the class count", a[i].Name)
		}
	}
}

func TestBatchValidate(t *testing.T) {
	spec := Spec{MLP, 1, 2, 2, 3}
	tests := []struct {
		name    string
		b       Batch
		wantErr string
	}{
		{"ok", Batch{X: make([]float32, 8), Y: []int32{0, 2}, N: 2}, ""},
		{"empty", Batch{}, ""},
		{"negative", Batch{N: -1}, "negative size -1"},
		{"labels short", Batch{X: make([]float32, 8), Y: []int32{0}, N: 2}, "1 labels for 2 samples"},
		{"inputs short", Batch{X: make([]float32, 7), Y: []int32{0, 1}, N: 2}, "7 input values for 2 samples of 1x2x2"},
		{"inputs long", Batch{X: make([]float32, 12), Y: []int32{0, 1}, N: 2}, "12 input values"},
		{"label high", Batch{X: make([]float32, 8), Y: []int32{0, 3}, N: 2}, "sample 1: label 3 out of range [0,3)"},
		{"label negative", Batch{X: make([]float32, 8), Y: []int32{-2, 0}, N: 2}, "sample 0: label -2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.b.Validate(spec)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSGDValidate(t *testing.T) {
	params, err := Init(Spec{Logistic, 1, 2, 2, 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	tests := []struct {
		name    string
		o       SGD
		wantErr string
	}{
		{"executor defaults", SGD{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, LossDecay: 0.2}, ""},
		{"prox with anchor", SGD{LR: 0.05, ProxMu: 0.1, Anchor: params.Clone()}, ""},
		{"anchor ignored without prox", SGD{LR: 0.05, Anchor: params[:1]}, ""},
		{"negative lr", SGD{LR: -0.1}, "learning rate -0.1"},
		{"NaN lr", SGD{LR: nan}, "learning rate NaN"},
		{"infinite weight decay", SGD{LR: 0.1, WeightDecay: float32(math.Inf(1))}, "weight decay +Inf"},
		{"negative momentum", SGD{LR: 0.1, Momentum: -0.9}, "momentum"},
		{"negative mu", SGD{LR: 0.1, ProxMu: -0.1}, "proximal mu"},
		{"loss decay", SGD{LR: 0.1, LossDecay: -0.5}, "loss decay -0.5"},
		{"missing anchor", SGD{LR: 0.1, ProxMu: 0.1}, "needs the global weights as Anchor"},
		{"anchor aliases params", SGD{LR: 0.1, ProxMu: 0.1, Anchor: params}, `anchor tensor "fc.weight" shares memory`},
		{"anchor mismatch", SGD{LR: 0.1, ProxMu: 0.1, Anchor: tensor.List{tensor.New("fc.weight", 2, 3), params[1]}}, "anchor does not match the parameters: tensor \"fc.weight\": shape [2 3]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate(params)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestEvalStatsAdd(t *testing.T) {
	e := EvalStats{LossSum: 1.5, Top1: 2, Top5: 3, Count: 4}
	e.Add(EvalStats{LossSum: 0.5, Top1: 1, Top5: 1, Count: 2})
	if want := (EvalStats{LossSum: 2, Top1: 3, Top5: 4, Count: 6}); e != want {
		t.Errorf("Add: %+v, want %+v", e, want)
	}
}

// TestInitTorchvision checks the torchvision rules' statistics: Kaiming
// normal fan-out convolutions (ResNet, MobileNetV2), PyTorch's default
// uniform (ShuffleNetV2, linear layers), MobileNetV2's classifier
// normal(0, 0.01) with a zero bias, batch norm 1/0/0/1/0.
func TestInitTorchvision(t *testing.T) {
	stats := func(x []float32) (mean, std, maxAbs float64) {
		for _, v := range x {
			mean += float64(v)
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		mean /= float64(len(x))
		for _, v := range x {
			std += (float64(v) - mean) * (float64(v) - mean)
		}
		return mean, math.Sqrt(std / float64(len(x))), maxAbs
	}
	find := func(l tensor.List, name string) tensor.Tensor {
		for _, p := range l {
			if p.Name == name {
				return p
			}
		}
		t.Fatalf("no tensor %q", name)
		return tensor.Tensor{}
	}
	for _, tc := range []struct {
		model, tensor string
		std, bound    float64 // bound 0: normal with std; else uniform in ±bound
	}{
		{ResNet18, "layer1.0.conv1.weight", math.Sqrt(2.0 / (64 * 9)), 0},
		{ResNet18, "conv1.weight", math.Sqrt(2.0 / (64 * 49)), 0},
		{ResNet18, "fc.weight", 0, 1 / math.Sqrt(512)},
		{ResNet18, "fc.bias", 0, 1 / math.Sqrt(512)},
		{MobileNetV2, "features.2.conv.1.0.weight", math.Sqrt(2.0 / (96 * 9)), 0},
		{MobileNetV2, "classifier.1.weight", 0.01, 0},
		{ShuffleNetV2x1_0, "stage2.0.branch2.0.weight", 0, 1 / math.Sqrt(24)},
		{ShuffleNetV2x1_0, "fc.weight", 0, 1 / math.Sqrt(1024)},
	} {
		p, err := Init(Spec{tc.model, 3, 32, 32, 10}, 9)
		if err != nil {
			t.Fatal(err)
		}
		x := find(p, tc.tensor).Data
		mean, std, maxAbs := stats(x)
		n := float64(len(x))
		want := tc.std
		if tc.bound > 0 {
			want = tc.bound / math.Sqrt(3)
			if maxAbs > tc.bound {
				t.Errorf("%s %s: |value| up to %v, bound %v", tc.model, tc.tensor, maxAbs, tc.bound)
			}
		}
		// Four standard errors of the sample mean and deviation.
		if math.Abs(std-want) > math.Max(0.1, 4/math.Sqrt(2*n))*want || math.Abs(mean) > 4*want/math.Sqrt(n) {
			t.Errorf("%s %s: mean %.4g std %.4g, want 0 and %.4g", tc.model, tc.tensor, mean, std, want)
		}
	}
	p, _ := Init(Spec{MobileNetV2, 3, 32, 32, 10}, 9)
	for name, want := range map[string]float32{"classifier.1.bias": 0, "features.0.1.weight": 1, "features.0.1.bias": 0,
		"features.0.1.running_mean": 0, "features.0.1.running_var": 1, "features.0.1.num_batches_tracked": 0} {
		for _, v := range find(p, name).Data {
			if v != want {
				t.Fatalf("%s holds %v, want every value %v", name, v, want)
			}
		}
	}
}
