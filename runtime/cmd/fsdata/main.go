// Command fsdata converts an MNIST-style IDX dataset (MNIST, Fashion-MNIST)
// into the FedScale FEMNIST layout, partitioning the training set among
// clients non-IID with a Dirichlet draw. It is a thin wrapper around
// data.ConvertIDX.
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
	conv                                             data.ConvertOptions
}

func newCommand(stdout io.Writer) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "fsdata --idx-dir DIR --out DIR [flags]",
		Short: "Convert MNIST-style IDX files into a non-IID federated dataset in the FedScale layout",
		Long: `fsdata reads the four IDX files of MNIST or Fashion-MNIST and writes
OUT/train/<i>.png, OUT/test/<i>.png and OUT/client_data_mapping/{train,test}.csv.
Training samples are split among clients with a Dirichlet(alpha) draw per class
(smaller alpha: more skewed clients); test samples are dealt round-robin.`,
		Version:       version.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
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

func sources(o options) (data.IDXFiles, error) {
	if o.idxDir != "" {
		return data.FindIDX(o.idxDir)
	}
	src := data.IDXFiles{TrainImages: o.trainImages, TrainLabels: o.trainLabels, TestImages: o.testImages, TestLabels: o.testLabels}
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
