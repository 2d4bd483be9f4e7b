package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// IDXFiles names the four files of an MNIST-style dataset and, when the
// limits are positive, how many leading samples of each split to take.
type IDXFiles struct {
	TrainImages, TrainLabels, TestImages, TestLabels string
	TrainLimit, TestLimit                            int
}

// Standard IDX file names, as distributed for MNIST and Fashion-MNIST.
var idxNames = [4]string{
	"train-images-idx3-ubyte",
	"train-labels-idx1-ubyte",
	"t10k-images-idx3-ubyte",
	"t10k-labels-idx1-ubyte",
}

// FindIDX finds the four standard IDX files in dir, each either plain or
// with a .gz suffix (plain preferred: it reads faster).
func FindIDX(dir string) (IDXFiles, error) {
	return findIDXNames(dir, idxNames)
}

// findIDXNames finds the four IDX files named names (train images, train
// labels, test images, test labels) in dir, plain or gzipped.
func findIDXNames(dir string, names [4]string) (IDXFiles, error) {
	var found [4]string
	var missing []string
	for i, name := range names {
		for _, cand := range []string{name, name + ".gz"} {
			p := filepath.Join(dir, cand)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				found[i] = p
				break
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return IDXFiles{}, fmt.Errorf("idx dir: %w", err)
			}
		}
		if found[i] == "" {
			missing = append(missing, name+"[.gz]")
		}
	}
	if len(missing) > 0 {
		return IDXFiles{}, fmt.Errorf("idx dir %s: missing %s", dir, strings.Join(missing, ", "))
	}
	return IDXFiles{TrainImages: found[0], TrainLabels: found[1], TestImages: found[2], TestLabels: found[3]}, nil
}

// FashionMNISTLabels are Fashion-MNIST's class names, by label.
var FashionMNISTLabels = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// MNISTLabels are MNIST's class names (the digits), by label.
var MNISTLabels = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// ConvertOptions configures ConvertIDX.
type ConvertOptions struct {
	Out        string   // output data directory
	Clients    int      // number of clients
	Alpha      float64  // Dirichlet concentration of the training partition
	Seed       uint64   // partition seed
	MinSamples int      // minimum training samples per client
	LabelNames []string // label_name per label; nil: the label number
	Overwrite  bool     // replace a dataset already in Out
}

// ConvertSummary describes a converted dataset.
type ConvertSummary struct {
	Clients                 int
	TrainSamples            int
	TestSamples             int
	Classes                 int
	MinPerClient            int // training samples of the smallest client
	MedianPerClient         float64
	MaxPerClient            int
	ImageHeight, ImageWidth int
}

// ClientName is the client_id written for client k.
func ClientName(k int) string { return fmt.Sprintf("client_%04d", k) }

// ConvertIDX turns an MNIST-style IDX dataset into the FedScale layout in
// opt.Out. Training samples are split among clients non-IID (Dirichlet) and
// written grouped by client; test samples are dealt round-robin, since the
// runtime evaluates the whole test set anyway.
func ConvertIDX(src IDXFiles, opt ConvertOptions) (ConvertSummary, error) {
	set, err := readIDXSet(src)
	if err != nil {
		return ConvertSummary{}, err
	}
	trainPix, trainLabels, testPix, testLabels := set.trainPix, set.trainLabels, set.testPix, set.testLabels
	h, w, classes := set.h, set.w, set.classes
	if opt.LabelNames != nil && len(opt.LabelNames) < classes {
		return ConvertSummary{}, fmt.Errorf("%d label names for %d classes", len(opt.LabelNames), classes)
	}

	parts, err := Dirichlet(trainLabels, opt.Clients, opt.Alpha, opt.MinSamples, opt.Seed)
	if err != nil {
		return ConvertSummary{}, err
	}
	hw := h * w
	train := make([]Record, 0, len(trainLabels))
	counts := make([]int, len(parts))
	for k, idx := range parts {
		counts[k] = len(idx)
		for _, i := range idx {
			train = append(train, Record{Client: ClientName(k), Label: int(trainLabels[i]), Pixels: trainPix[i*hw : (i+1)*hw]})
		}
	}
	test := make([]Record, len(testLabels))
	for i, l := range testLabels {
		test[i] = Record{Client: ClientName(i % opt.Clients), Label: int(l), Pixels: testPix[i*hw : (i+1)*hw]}
	}
	var wopts []WriteOption
	if opt.Overwrite {
		wopts = append(wopts, Overwrite())
	}
	if err := WriteLayout(opt.Out, w, h, train, test, opt.LabelNames, wopts...); err != nil {
		return ConvertSummary{}, err
	}

	slices.Sort(counts)
	median := float64(counts[len(counts)/2])
	if len(counts)%2 == 0 {
		median = float64(counts[len(counts)/2-1]+counts[len(counts)/2]) / 2
	}
	return ConvertSummary{
		Clients: len(parts), TrainSamples: len(train), TestSamples: len(test), Classes: classes,
		MinPerClient: counts[0], MedianPerClient: median, MaxPerClient: counts[len(counts)-1],
		ImageHeight: h, ImageWidth: w,
	}, nil
}

// idxSet is an IDX data set read whole: both splits, images of h x w,
// labels below classes.
type idxSet struct {
	trainPix, trainLabels, testPix, testLabels []uint8
	h, w, classes                              int
}

// readIDXSet reads src's four files and checks that both splits have
// images of one size.
func readIDXSet(src IDXFiles) (idxSet, error) {
	var s idxSet
	var err error
	s.trainPix, s.trainLabels, s.h, s.w, err = readIDXPair("training", src.TrainImages, src.TrainLabels, src.TrainLimit)
	if err != nil {
		return idxSet{}, err
	}
	var th, tw int
	s.testPix, s.testLabels, th, tw, err = readIDXPair("test", src.TestImages, src.TestLabels, src.TestLimit)
	if err != nil {
		return idxSet{}, err
	}
	if th != s.h || tw != s.w {
		return idxSet{}, fmt.Errorf("test images are %dx%d but training images %dx%d", tw, th, s.w, s.h)
	}
	s.classes = int(max(slices.Max(s.trainLabels), slices.Max(s.testLabels))) + 1
	return s, nil
}

// readIDXPair reads an image file and its label file, checks they agree,
// and keeps the first limit samples when limit is positive.
func readIDXPair(part, imagesPath, labelsPath string, limit int) (pix, labels []uint8, h, w int, err error) {
	pix, n, h, w, err := ReadIDXImages(imagesPath)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("%s images: %w", part, err)
	}
	labels, err = ReadIDXLabels(labelsPath)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("%s labels: %w", part, err)
	}
	if n != len(labels) {
		return nil, nil, 0, 0, fmt.Errorf("%s set: %d images (%s) but %d labels (%s)", part, n, imagesPath, len(labels), labelsPath)
	}
	if n == 0 {
		return nil, nil, 0, 0, fmt.Errorf("%s set: %s holds no images", part, imagesPath)
	}
	if limit < 0 || limit > n {
		return nil, nil, 0, 0, fmt.Errorf("%s set: %d samples asked for, %s holds %d", part, limit, imagesPath, n)
	}
	if limit > 0 {
		pix, labels = pix[:limit*h*w], labels[:limit]
	}
	return pix, labels, h, w, nil
}

// CIFARSummary describes a CIFAR-10 folder written from IDX files.
type CIFARSummary struct {
	Folder                    string // out/cifar-10-batches-py
	TrainSamples, TestSamples int
	Classes                   int
	FromWidth, FromHeight     int // the IDX images' size, before resizing
}

// ConvertIDXToCIFAR10 writes an MNIST-style IDX data set (MNIST,
// Fashion-MNIST: 10 classes of grey images) as torchvision's CIFAR-10
// folder out/cifar-10-batches-py (see WriteCIFAR10): every image resized
// to 32x32 with Pillow's bilinear filter, as torchvision's Resize would,
// and made RGB by repeating the grey plane, as PIL's convert('RGB') does.
// labelNames name the ten classes in batches.meta (nil: "0".."9").
func ConvertIDXToCIFAR10(src IDXFiles, out string, labelNames []string, overwrite bool) (CIFARSummary, error) {
	set, err := readIDXSet(src)
	if err != nil {
		return CIFARSummary{}, err
	}
	trainPix, trainLabels, testPix, testLabels := set.trainPix, set.trainLabels, set.testPix, set.testLabels
	h, w, classes := set.h, set.w, set.classes
	if classes > cifarClasses {
		return CIFARSummary{}, fmt.Errorf("labels go up to %d; a CIFAR-10 folder holds %d classes", classes-1, cifarClasses)
	}
	if labelNames == nil {
		labelNames = MNISTLabels // the digits 0..9
	}
	if len(labelNames) != cifarClasses {
		return CIFARSummary{}, fmt.Errorf("%d label names; a CIFAR-10 folder names %d classes", len(labelNames), cifarClasses)
	}
	rs, err := getResizer(w, h, 32, 32)
	if err != nil {
		return CIFARSummary{}, err
	}
	toRGB := func(pix []uint8, n int) []byte {
		out := make([]byte, n*CIFAR10ImageBytes)
		parallelFor(n, runtime.GOMAXPROCS(0), func(i int) {
			img := out[i*CIFAR10ImageBytes : (i+1)*CIFAR10ImageBytes]
			rs.resize(img[:1024], pix[i*h*w:(i+1)*h*w])
			copy(img[1024:2048], img[:1024])
			copy(img[2048:], img[:1024])
		})
		return out
	}
	err = WriteCIFAR10(out, toRGB(trainPix, len(trainLabels)), trainLabels, toRGB(testPix, len(testLabels)), testLabels, labelNames, overwrite)
	if err != nil {
		return CIFARSummary{}, err
	}
	return CIFARSummary{Folder: filepath.Join(out, CIFAR10Folder), TrainSamples: len(trainLabels), TestSamples: len(testLabels),
		Classes: classes, FromWidth: w, FromHeight: h}, nil
}
