package model

// Footprint is what a model of a Spec occupies: the sizes a process's
// memory follows. Schedulers size requests from it (the launcher's
// Kubernetes defaults), so it counts values, not measured bytes.
type Footprint struct {
	// Params is the number of parameter values (buffers included).
	Params int
	// Activations is the number of activation values one sample leaves
	// across every layer's output in a forward pass: what training keeps
	// for the backward pass.
	Activations int
}

// Measure returns spec's Footprint.
func Measure(spec Spec) (Footprint, error) {
	a, err := Build(spec)
	if err != nil {
		return Footprint{}, err
	}
	f := Footprint{Activations: activations(a.Root)}
	for _, p := range a.Params {
		f.Params += prod(p.shape)
	}
	return f, nil
}

// activations sums the outputs of l and its descendants: containers (Seq,
// Residual, Shuffle) add their own output too, which stands for the sums
// and concatenations they make.
func activations(l *Layer) int {
	n := l.Out.Size()
	for _, c := range l.Children {
		n += activations(c)
	}
	return n
}

// Process memory, by the parts that grow with the model. A runtime process
// holds about paramCopies float32 copies of the parameters: the executor
// the model received, its training copy, the gradients, the momentum, the
// update it encodes for the wire; the aggregator the model it serves, its
// running sum (float64: two copies), the update being decoded and the
// checkpoint being written. A trainer adds a batch's activations twice
// (values and their gradients). baseBytes is the rest: the Go runtime, gRPC
// buffers, the data index and a data set held in memory (CIFAR-10's
// 50,000 images are 150 MiB).
const (
	paramCopies = 6
	baseBytes   = 512 << 20
)

// ProcessMemory estimates the bytes a runtime process needs for a model of
// footprint f: an executor (trains) training and evaluating batches of up
// to batch samples, or the aggregator. It is a request to reserve, not a
// bound: schedulers add headroom for the limit.
func ProcessMemory(f Footprint, trains bool, batch int) int64 {
	n := int64(baseBytes) + int64(paramCopies)*4*int64(f.Params)
	if trains {
		n += 2 * 4 * int64(batch) * int64(f.Activations)
	}
	return n
}
