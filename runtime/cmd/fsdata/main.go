// Command fsdata converts an MNIST-style IDX dataset (MNIST, Fashion-MNIST)
// into the FedScale FEMNIST layout, partitioning the training set among
// clients non-IID with a Dirichlet draw, or with --cifar10 into
// torchvision's CIFAR-10 folder (32x32 RGB), for FedScale's cifar10 jobs.
// It is a thin wrapper around data.ConvertIDX and data.ConvertIDXToCIFAR10.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/version"
	"github.com/spf13/cobra"
)

type options struct {
	idxDir                                           string
	trainImages, trainLabels, testImages, testLabels string
	labelNames                                       string
	trainSamples, testSamples                        int
	cifar10                                          bool
	conv                                             data.ConvertOptions
}

func newCommand(stdout io.Writer) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "fsdata --idx-dir DIR --out DIR [--cifar10] [flags]",
		Short: "Convert MNIST-style IDX files into a federated dataset in the FedScale layout or as CIFAR-10",
		Long: `fsdata reads the four IDX files of MNIST or Fashion-MNIST and writes
OUT/train/<i>.png, OUT/test/<i>.png and OUT/client_data_mapping/{train,test}.csv.
Training samples are split among clients with a Dirichlet(alpha) draw per class
(smaller alpha: more skewed clients); test samples are dealt round-robin.

With --cifar10 it writes OUT/cifar-10-batches-py instead, the folder
torchvision.datasets.CIFAR10 reads and FedScale's cifar10 jobs name as data_dir:
data_batch_1..5, test_batch and batches.meta, pickles of the original's shape,
every image resized to 32x32 (Pillow's bilinear filter) and made RGB. Clients
are not written: a cifar10 job splits the training set at load time (FedScale's
uniform partition into num_participants clients, or a data_map_file).`,
		Version:       version.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.cifar10 {
				var set []string
				for _, name := range []string{"clients", "alpha", "seed", "min-samples"} {
					if cmd.Flags().Changed(name) {
						set = append(set, "--"+name)
					}
				}
				if len(set) > 0 {
					return fmt.Errorf("%s shape the FEMNIST layout's clients; a CIFAR-10 folder has none (cifar10 jobs split it at load time)", strings.Join(set, ", "))
				}
				return runCIFAR(o, stdout)
			}
			return run(o, stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.idxDir, "idx-dir", "", "folder holding the four standard IDX files (plain or .gz)")
	f.StringVar(&o.trainImages, "train-images", "", "training images IDX file")
	f.StringVar(&o.trainLabels, "train-labels", "", "training labels IDX file")
	f.StringVar(&o.testImages, "test-images", "", "test images IDX file")
	f.StringVar(&o.testLabels, "test-labels", "", "test labels IDX file")
	f.StringVar(&o.conv.Out, "out", "", "output data directory (required)")
	f.IntVar(&o.conv.Clients, "clients", 100, "number of clients")
	f.Float64Var(&o.conv.Alpha, "alpha", 0.5, "Dirichlet concentration: smaller is more non-IID")
	f.Uint64Var(&o.conv.Seed, "seed", 1, "partition seed")
	f.IntVar(&o.conv.MinSamples, "min-samples", 20, "minimum training samples per client")
	f.StringVar(&o.labelNames, "label-names", "", `label_name column: "fashion", "mnist" or a comma-separated list; default the label number`)
	f.BoolVar(&o.conv.Overwrite, "force", false, "replace a dataset already in --out")
	f.IntVar(&o.trainSamples, "train-samples", 0, "use the first N training samples (default all)")
	f.IntVar(&o.testSamples, "test-samples", 0, "use the first N test samples (default all)")
	f.BoolVar(&o.cifar10, "cifar10", false, "write torchvision's CIFAR-10 folder (32x32 RGB) instead of the FEMNIST layout")
	_ = cmd.MarkFlagRequired("out")
	for _, name := range []string{"train-images", "train-labels", "test-images", "test-labels"} {
		cmd.MarkFlagsMutuallyExclusive("idx-dir", name)
	}
	return cmd
}

// run resolves the input files and label names, converts, and prints a
// one-line summary.
func run(o options, stdout io.Writer) error {
	src, err := sources(o)
	if err != nil {
		return err
	}
	o.conv.LabelNames = labelNames(o.labelNames)
	start := time.Now()
	sum, err := data.ConvertIDX(src, o.conv)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "fsdata: %s: %d clients, %d train + %d test samples, %d classes, %dx%d; train samples per client min %d / median %g / max %d; %.1f s\n",
		o.conv.Out, sum.Clients, sum.TrainSamples, sum.TestSamples, sum.Classes, sum.ImageWidth, sum.ImageHeight,
		sum.MinPerClient, sum.MedianPerClient, sum.MaxPerClient, time.Since(start).Seconds())
	return err
}

// runCIFAR writes the CIFAR-10 folder and prints a one-line summary.
func runCIFAR(o options, stdout io.Writer) error {
	src, err := sources(o)
	if err != nil {
		return err
	}
	start := time.Now()
	sum, err := data.ConvertIDXToCIFAR10(src, o.conv.Out, labelNames(o.labelNames), o.conv.Overwrite)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "fsdata: %s: %d train + %d test images, %d classes, %dx%d grey resized to 32x32 RGB; %.1f s\n",
		sum.Folder, sum.TrainSamples, sum.TestSamples, sum.Classes, sum.FromWidth, sum.FromHeight, time.Since(start).Seconds())
	return err
}

func sources(o options) (data.IDXFiles, error) {
	for _, f := range []struct {
		name string
		v    int
	}{{"--train-samples", o.trainSamples}, {"--test-samples", o.testSamples}} {
		if f.v < 0 {
			return data.IDXFiles{}, fmt.Errorf("%s must not be negative (0: all), got %d", f.name, f.v)
		}
	}
	if o.idxDir != "" {
		src, err := data.FindIDX(o.idxDir)
		src.TrainLimit, src.TestLimit = o.trainSamples, o.testSamples
		return src, err
	}
	src := data.IDXFiles{TrainImages: o.trainImages, TrainLabels: o.trainLabels, TestImages: o.testImages, TestLabels: o.testLabels,
		TrainLimit: o.trainSamples, TestLimit: o.testSamples}
	var missing []string
	for _, p := range []struct{ flag, val string }{
		{"--train-images", src.TrainImages}, {"--train-labels", src.TrainLabels},
		{"--test-images", src.TestImages}, {"--test-labels", src.TestLabels},
	} {
		if p.val == "" {
			missing = append(missing, p.flag)
		}
	}
	if len(missing) > 0 {
		return src, errors.New("give --idx-dir, or all of --train-images, --train-labels, --test-images, --test-labels (missing " + strings.Join(missing, ", ") + ")")
	}
	return src, nil
}

func labelNames(spec string) []string {
	switch spec {
	case "":
		return nil
	case "fashion":
		return data.FashionMNISTLabels
	case "mnist":
		return data.MNISTLabels
	}
	names := strings.Split(spec, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	return names
}

func main() {
	if err := newCommand(os.Stdout).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "fsdata:", err)
		os.Exit(1)
	}
}
