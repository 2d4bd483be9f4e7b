package data

import (
	"errors"
	"fmt"

	"github.com/fedscale/fedscale-go/runtime/pickle"
)

// A CIFAR-10 batch is a pickled dict of lists, numbers and strings holding
// one NumPy uint8 array. Package pickle decodes it; this file models the
// few globals NumPy names to rebuild the array (_reconstruct, ndarray,
// dtype, _frombuffer). Any other global is an error.

// maxPickleValues bounds the values a batch's pickle may push, memoize or
// hold: each costs tens of bytes of Go memory for one byte of input. A
// batch pushes about three per image (its label, its file name and that
// name's memo entry); this allows torchvision's whole training set in
// one batch, many times over.
const maxPickleValues = 1 << 20

// cifarBudget bounds the decoding of one batch: torchvision's 50,000
// training images of 3,072 bytes in a single batch, with room for the
// copies a Python 3 protocol-2 file makes of its array (the pickle spells
// it as a str, whose UTF-8 text and latin1 bytes are both decoded).
var cifarBudget = pickle.Budget{Elements: maxPickleValues, Bytes: 4 * 50_000 * CIFAR10ImageBytes}

// unpickle decodes one pickled batch.
func unpickle(data []byte) (any, error) {
	return pickle.Decode(data, cifarBudget, numpyObjects{})
}

// A NumPy dtype and array as a batch's pickle rebuilds them.
type (
	pyGlobal struct{ module, name string }
	pyDtype  struct{ str string }
	pyArray  struct {
		shape []int
		dtype *pyDtype
		data  []byte
	}
)

// numpyObjects is the pickle.Objects of a CIFAR-10 batch.
type numpyObjects struct{}

// The globals a NumPy array pickle refers to, under NumPy 1 and 2 module
// names.
var allowedGlobals = map[string]string{
	"numpy.core.multiarray._reconstruct":  "_reconstruct",
	"numpy._core.multiarray._reconstruct": "_reconstruct",
	"numpy.ndarray":                       "ndarray",
	"numpy.dtype":                         "dtype",
	"numpy.core.numeric._frombuffer":      "_frombuffer",
	"numpy._core.numeric._frombuffer":     "_frombuffer",
}

func (numpyObjects) Global(module, name string) (any, error) {
	g, ok := allowedGlobals[module+"."+name]
	if !ok {
		return nil, fmt.Errorf("refers to %.64q; a CIFAR-10 batch holds only dicts, lists, numbers, strings and NumPy uint8 arrays", module+"."+name)
	}
	return pyGlobal{module: module, name: g}, nil
}

// Call applies an allowed global to its arguments.
func (numpyObjects) Call(f any, args pickle.Tuple) (any, error) {
	g, ok := f.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("REDUCE calls a %s", pyTypeName(f))
	}
	switch g.name {
	case "_reconstruct": // _reconstruct(ndarray, (0,), b'b'): an empty array BUILD fills
		if len(args) != 3 || args[0] != (pyGlobal{module: "numpy", name: "ndarray"}) {
			return nil, errors.New("_reconstruct does not make a numpy.ndarray")
		}
		return &pyArray{}, nil
	case "dtype": // dtype('u1', align, copy)
		if len(args) < 1 {
			return nil, errors.New("dtype without arguments")
		}
		s, ok := pickle.Text(args[0])
		if !ok {
			return nil, fmt.Errorf("dtype of a %s", pyTypeName(args[0]))
		}
		return &pyDtype{str: s}, nil
	case "_frombuffer": // _frombuffer(buffer, dtype, shape, order)
		if len(args) != 4 {
			return nil, fmt.Errorf("_frombuffer with %d arguments", len(args))
		}
		a := &pyArray{}
		return a, a.set(args[2], args[1], args[0], args[3] == "F")
	}
	return nil, fmt.Errorf("%s.%s is not callable here", g.module, g.name)
}

// Build applies BUILD's state to an array or a dtype.
func (numpyObjects) Build(obj, state any) error {
	switch o := obj.(type) {
	case *pyDtype:
		return nil // byte order and flags: irrelevant to a one-byte type
	case *pyArray:
		t, ok := state.(pickle.Tuple)
		if !ok {
			return fmt.Errorf("array state is a %s", pyTypeName(state))
		}
		if len(t) == 5 { // (version, shape, dtype, is_fortran, data)
			t = t[1:]
		}
		if len(t) != 4 {
			return fmt.Errorf("array state of %d items", len(t))
		}
		fortran, _ := t[2].(bool)
		return o.set(t[0], t[1], t[3], fortran)
	}
	return fmt.Errorf("BUILD on a %s", pyTypeName(obj))
}

// set checks and stores an array's shape, dtype and contents: a uint8
// array whose element count is the data's length.
func (a *pyArray) set(shape, dtype, data any, fortran bool) error {
	dt, ok := dtype.(*pyDtype)
	if !ok {
		return fmt.Errorf("array dtype is a %s", pyTypeName(dtype))
	}
	if dt.str != "u1" && dt.str != "|u1" && dt.str != "uint8" {
		return fmt.Errorf("array of dtype %.64q; CIFAR-10 images are uint8", dt.str)
	}
	st, ok := shape.(pickle.Tuple)
	if !ok {
		return fmt.Errorf("array shape is a %s", pyTypeName(shape))
	}
	raw, ok := data.(pickle.Bytes)
	if !ok {
		return fmt.Errorf("array data is a %s", pyTypeName(data))
	}
	n := 1
	a.shape = make([]int, 0, len(st))
	for _, v := range st {
		d, ok := v.(int64)
		if !ok || d < 0 || d > int64(len(raw)) {
			return fmt.Errorf("array shape %v does not fit its %d bytes", st, len(raw))
		}
		if d != 0 && n > len(raw)/int(d) {
			return fmt.Errorf("array shape %v does not fit its %d bytes", st, len(raw))
		}
		n *= int(d)
		a.shape = append(a.shape, int(d))
	}
	if n != len(raw) {
		return fmt.Errorf("array shape %v holds %d values, its data %d bytes", st, n, len(raw))
	}
	if fortran && len(a.shape) > 1 {
		return errors.New("array in Fortran order")
	}
	a.dtype, a.data = dt, raw
	return nil
}

// pyTypeName names a batch's values: package pickle's, and NumPy's.
func pyTypeName(v any) string {
	switch v.(type) {
	case pyGlobal:
		return "global"
	case *pyDtype:
		return "numpy.dtype"
	case *pyArray:
		return "numpy.ndarray"
	}
	return pickle.TypeName(v)
}
