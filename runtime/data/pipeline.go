package data

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
)

// Format is where a data set's samples come from.
type Format int

const (
	// FormatLayout is FedScale's FEMNIST layout: client_data_mapping CSVs
	// naming PNG files under the data directory.
	FormatLayout Format = iota
	// FormatCIFAR10 is torchvision's on-disk CIFAR-10: the pickled batches
	// of data_dir/cifar-10-batches-py.
	FormatCIFAR10
	// FormatIDX is torchvision's MNIST-style raw folder: four IDX files
	// under data_dir/<Name>/raw.
	FormatIDX
)

// Pipeline is what FedScale does to one data set's samples before its
// model sees them (fedscale/cloud/fllibs.py init_dataset and
// fedscale/dataloaders/utils_data.py get_data_transform), as facts: where
// the samples come from, the model's input size and class count, and the
// transforms. The order of the transforms is FedScale's: grey to RGB,
// resize, random crop with padding, random horizontal flip, ToTensor
// (pixel/255), Normalize ((x-mean)/std in float32, as torchvision
// computes it).
//
// Training draws its augmentation from a stream the caller seeds;
// evaluation is deterministic: no crop offset and no flip, even where
// FedScale's test transform draws them at random.
type Pipeline struct {
	DataSet string // job_conf.data_set
	Format  Format
	// IDXFolder and IDXFiles locate FormatIDX data: data_dir/IDXFolder/raw
	// holding train images, train labels, test images, test labels.
	IDXFolder string
	IDXFiles  [4]string

	// Channels x Height x Width is the model's input; a grey image fed to
	// 3 channels is repeated in each (PIL's convert('RGB')). Height and
	// Width 0 mean the stored image size (the grey pipeline).
	Channels, Height, Width int
	// Classes is FedScale's outputClass for the data set: the model's
	// output size, whatever labels the files hold. 0 means max label + 1.
	Classes int

	Resize bool // to Height x Width with Pillow's bilinear filter
	Pad    int  // training: RandomCrop(Height, padding=Pad), zero fill; 0 none
	Flip   bool // training: RandomHorizontalFlip(p=0.5)
	// Mean and Std are Normalize's; one value applies to every channel.
	// Both nil: no normalisation (pixel/255 only).
	Mean, Std []float32

	grey bool           // GreyPipeline's
	luts [][256]float32 // per output channel: pixel value -> model input
}

// GreyInputKey is the job_conf key of our own that selects the grey
// pipeline: FEMNIST-layout images fed as stored, one channel in [0,1].
const GreyInputKey = "grey_input"

// pipelines holds FedScale's image data sets, by data_set name.
var pipelines = map[string]Pipeline{
	// FEMNIST: femnist.py opens each PNG and converts it to RGB; the
	// 'mnist' transform resizes to 32x32, flips, and normalises with
	// MNIST's single mean and std, applied to all three channels.
	"femnist": {Format: FormatLayout, Channels: 3, Height: 32, Width: 32, Classes: 62,
		Resize: true, Flip: true, Mean: []float32{0.1307}, Std: []float32{0.3081}},
	// CIFAR-10: torchvision's CIFAR10; the 'cifar' transform crops 32 with
	// padding 4 and flips, and does not normalise (FedScale comments its
	// Normalize out).
	"cifar10": {Format: FormatCIFAR10, Channels: 3, Height: 32, Width: 32, Classes: 10, Pad: 4, Flip: true},
	// MNIST: torchvision's MNIST (grey PIL images, not converted to RGB)
	// with the 'mnist' transform.
	"Mnist": {Format: FormatIDX, IDXFolder: "MNIST", IDXFiles: idxNames, Channels: 1, Height: 32, Width: 32, Classes: 10,
		Resize: true, Flip: true, Mean: []float32{0.1307}, Std: []float32{0.3081}},
	// EMNIST balanced: torchvision's EMNIST with ToTensor only.
	"emnist": {Format: FormatIDX, IDXFolder: "EMNIST", IDXFiles: [4]string{
		"emnist-balanced-train-images-idx3-ubyte", "emnist-balanced-train-labels-idx1-ubyte",
		"emnist-balanced-test-images-idx3-ubyte", "emnist-balanced-test-labels-idx1-ubyte",
	}, Channels: 1, Height: 28, Width: 28, Classes: 47},
}

// DataSets returns the data_set names with a FedScale pipeline, sorted.
func DataSets() []string {
	names := make([]string, 0, len(pipelines))
	for n := range pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PipelineFor returns FedScale's pipeline for data_set name.
func PipelineFor(name string) (*Pipeline, error) {
	p, ok := pipelines[name]
	if !ok {
		for n := range pipelines {
			if strings.EqualFold(n, name) {
				return nil, fmt.Errorf("unknown data set %q: FedScale spells it %q", name, n)
			}
		}
		return nil, fmt.Errorf("unknown data set %q (supported: %s; or set job_conf.%s: true to feed FEMNIST-layout images as stored, one grey channel)",
			name, strings.Join(DataSets(), ", "), GreyInputKey)
	}
	p.DataSet = name
	p.Mean, p.Std = append([]float32(nil), p.Mean...), append([]float32(nil), p.Std...)
	p.initLUTs()
	return &p, nil
}

// GreyPipeline is the pipeline of job_conf.grey_input: images of the
// FEMNIST layout fed as stored, h x w, one grey channel, pixel/255, no
// augmentation; the class count comes from the labels. dataSet is only a
// name.
func GreyPipeline(dataSet string, h, w int) *Pipeline {
	p := &Pipeline{DataSet: dataSet, Format: FormatLayout, Channels: 1, Height: h, Width: w, grey: true}
	p.initLUTs()
	return p
}

// Grey reports whether p is the grey pipeline (job_conf.grey_input).
func (p *Pipeline) Grey() bool { return p.grey }

// initLUTs tabulates ToTensor and Normalize for every pixel value: a
// float32 division by 255, then (x - mean) / std with both rounded to
// float32, exactly as torchvision computes them on the CPU.
func (p *Pipeline) initLUTs() {
	p.luts = make([][256]float32, max(p.Channels, 1))
	for c := range p.luts {
		for v := range 256 {
			x := float32(v) / 255
			if len(p.Mean) > 0 {
				m, s := p.Mean[min(c, len(p.Mean)-1)], p.Std[min(c, len(p.Std)-1)]
				x = float32(x-m) / s
			}
			p.luts[c][v] = x
		}
	}
}

// Augment is one training sample's random augmentation: the crop's top
// and left offsets in the padded image (Pad, Pad is the uncropped image)
// and whether it is flipped left to right.
type Augment struct {
	Top, Left int
	Flip      bool
}

// identity is the augmentation of evaluation.
func (p *Pipeline) identity() Augment { return Augment{Top: p.Pad, Left: p.Pad} }

// draw takes one sample's augmentation from rng: the crop's top offset,
// then its left offset (when the pipeline crops), then the flip (when it
// flips), each uniform. The stream, seeded by the task, is what makes a
// task's batches the same on every executor.
func (p *Pipeline) draw(rng *rand.Rand) Augment {
	a := p.identity()
	if p.Pad > 0 {
		a.Top = rng.IntN(2*p.Pad + 1)
		a.Left = rng.IntN(2*p.Pad + 1)
	}
	if p.Flip {
		a.Flip = rng.IntN(2) == 1
	}
	return a
}

// SampleSize is the number of model input values per sample.
func (p *Pipeline) SampleSize() int { return p.Channels * p.Height * p.Width }

// resizeBufs holds the per-sample buffers of resized images.
var resizeBufs = sync.Pool{New: func() any { return new([]uint8) }}

// Batch writes the model input of samples idx of split s into dst, sample
// after sample (len(idx)*SampleSize() values; dst may be longer) and
// returns their labels. aug, when not nil, draws the training
// augmentation, sample by sample in idx order; nil is evaluation.
func (p *Pipeline) Batch(s *Split, idx []int32, dst []float32, aug *rand.Rand) ([]int32, error) {
	n := p.SampleSize()
	if len(dst) < len(idx)*n {
		return nil, fmt.Errorf("batch of %d samples of %dx%dx%d needs %d values, dst has %d", len(idx), p.Channels, p.Height, p.Width, len(idx)*n, len(dst))
	}
	h, w, err := s.Shape()
	if err != nil {
		return nil, err
	}
	sc := s.Channels()
	if sc != 1 && sc != p.Channels {
		return nil, fmt.Errorf("%s: images have %d channels, the %s pipeline makes %d", s.MapFile, sc, p.DataSet, p.Channels)
	}
	var rs *resizer
	if h != p.Height || w != p.Width {
		if !p.Resize {
			return nil, fmt.Errorf("%s: images are %dx%d, the %s pipeline takes %dx%d", s.MapFile, w, h, p.DataSet, p.Width, p.Height)
		}
		if rs, err = getResizer(w, h, p.Width, p.Height); err != nil {
			return nil, err
		}
	}
	if p.grey {
		// No resize, augmentation or normalisation: the split's own
		// pixel/255 batch, without the per-sample machinery below.
		return s.Batch(idx, dst)
	}
	var rbuf *[]uint8
	if rs != nil {
		rbuf = resizeBufs.Get().(*[]uint8)
		defer resizeBufs.Put(rbuf)
		if need := sc * p.Height * p.Width; cap(*rbuf) < need {
			*rbuf = make([]uint8, need)
		}
	}
	return s.images(idx, func(k int, pix []uint8) {
		if rs != nil {
			out := (*rbuf)[:sc*p.Height*p.Width]
			for c := range sc {
				rs.resize(out[c*p.Height*p.Width:(c+1)*p.Height*p.Width], pix[c*h*w:(c+1)*h*w])
			}
			pix = out
		}
		a := p.identity()
		if aug != nil {
			a = p.draw(aug)
		}
		p.sample(dst[k*n:(k+1)*n], pix, sc, a)
	})
}

// sample writes one sample's model input from pix (srcC planes of
// Height x Width, already resized) under augmentation a: out[c][y][x] is
// the padded image's pixel (y+Top, x'+Left), x' = Width-1-x when flipped,
// where the padded image is pix with Pad zero pixels on every side.
func (p *Pipeline) sample(dst []float32, pix []uint8, srcC int, a Augment) {
	H, W, pad := p.Height, p.Width, p.Pad
	for c := range p.Channels {
		lut := &p.luts[c]
		plane := pix[min(c, srcC-1)*H*W:][:H*W]
		out := dst[c*H*W : (c+1)*H*W]
		if a.Top == pad && a.Left == pad && !a.Flip {
			for j, v := range plane {
				out[j] = lut[v]
			}
			continue
		}
		for y := range H {
			sy := y + a.Top - pad
			row := out[y*W : (y+1)*W]
			if sy < 0 || sy >= H {
				for x := range row {
					row[x] = lut[0]
				}
				continue
			}
			src := plane[sy*W : (sy+1)*W]
			for x := range row {
				sx := x
				if a.Flip {
					sx = W - 1 - x
				}
				sx += a.Left - pad
				if sx < 0 || sx >= W {
					row[x] = lut[0]
				} else {
					row[x] = lut[src[sx]]
				}
			}
		}
	}
}
