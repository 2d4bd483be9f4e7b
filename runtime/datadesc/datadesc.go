// Package datadesc owns the job's data description: how the data a job
// file names is opened (Options), what the job file fixes of the model's
// input and output without looking at any data (Shape), and the
// description an executor registers with (Info, Describe), which the
// aggregator holds every executor to, deriving it itself when it can read
// data_dir. Executor and aggregator both read it from here, so the two
// sides can never compute it differently.
package datadesc

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// Options is how the data job file c names is opened, by an executor
// and by the aggregator deriving its expectation.
func Options(c config.Conf) data.Options {
	return data.Options{DataSet: c.DataSet, DataDir: c.DataDir, MapFile: c.DataMapFile, Grey: c.GreyInput, Clients: c.NumParticipants}
}

// Describe is the data description an honest executor of job file c
// registers with when it loaded ds: Info with the model's class count
// (num_classes, else FedScale's for the data set, else the labels') and,
// in deployment, its one client. It refuses data the job file rules out:
// labels beyond the class count, or a digest other than
// job_conf.data_fingerprint. The aggregator derives its expectation with
// it too, when it can read data_dir itself.
func Describe(c config.Conf, ds *data.Dataset) (*pb.DataInfo, error) {
	classes := ds.ModelClasses()
	if n := c.NumClasses; n > 0 {
		// Deployment clients rarely hold every class; num_classes names
		// the model's size so all executors agree.
		if n < ds.Classes {
			return nil, fmt.Errorf("job_conf.num_classes is %d but %s has label ids up to %d", n, c.DataDir, ds.Classes-1)
		}
		if n > math.MaxInt32 { // Hello carries it as an int32
			return nil, fmt.Errorf("job_conf.num_classes must be at most %d, got %d", math.MaxInt32, n)
		}
		classes = n
	} else if classes < ds.Classes {
		return nil, fmt.Errorf("job_conf.data_dir: %s has label ids up to %d, but %s has %d classes in FedScale; set job_conf.num_classes to train a larger model",
			c.DataDir, ds.Classes-1, ds.Pipe().DataSet, classes)
	}
	info := Info(ds)
	info.Classes = int32(classes)
	if c.ExperimentMode == config.Deployment {
		// This process is one real client: all of its training data.
		info.ClientSamples = []int64{int64(ds.Train.Len())}
	} else if pin := c.DataFingerprint; pin != "" && info.GetFingerprint() != pin {
		return nil, fmt.Errorf("job_conf.data_fingerprint is %s but the data in %s has digest %s: it is not the data the job file pins", pin, c.DataDir, info.GetFingerprint())
	}
	return info, nil
}

// Shape is the model input and output size job file c fixes without
// looking at any data: data_set's pipeline (runtime/data's table) gives
// the input, num_classes or else FedScale's class count for the data set
// the output. Under grey_input the images' stored size and, without
// num_classes, their labels decide: those are 0. from names the keys
// the figures come from, for messages.
func Shape(c config.Conf) (classes, channels, height, width int, from string, err error) {
	classes = c.NumClasses
	if c.GreyInput {
		return classes, 1, 0, 0, "grey_input and num_classes", nil
	}
	p, err := data.PipelineFor(c.DataSet)
	if err != nil {
		return 0, 0, 0, 0, "", fmt.Errorf("job_conf.data_set: %w", err)
	}
	from = fmt.Sprintf("data_set %s", c.DataSet)
	if classes == 0 {
		classes = p.Classes
	} else {
		from += " and num_classes"
	}
	return classes, p.Channels, p.Height, p.Width, from, nil
}

// Info describes ds for registration: the model input its pipeline
// makes, and a digest of its mapping (and pipeline, unless grey) so the
// aggregator can tell executors with different data apart.
func Info(ds *data.Dataset) *pb.DataInfo {
	h := sha256.New()
	var b [8]byte
	p := ds.Pipe()
	c, height, width := ds.Input()
	if !p.Grey() {
		// Grey digests stay what they were before pipelines existed, so
		// older checkpoints still resume.
		fmt.Fprintf(h, "pipeline %s %dx%dx%d\x00", p.DataSet, c, height, width)
	}
	for _, sp := range []*data.Split{ds.Train, ds.Test} {
		binary.LittleEndian.PutUint64(b[:], uint64(sp.Len()))
		h.Write(b[:])
		for i := range sp.Paths {
			h.Write([]byte(sp.Paths[i]))
			binary.LittleEndian.PutUint32(b[:4], uint32(sp.Labels[i]))
			binary.LittleEndian.PutUint32(b[4:], uint32(sp.Clients[i]))
			h.Write(b[:])
		}
	}
	counts := make([]int64, len(ds.Train.ClientSamples))
	for i, s := range ds.Train.ClientSamples {
		counts[i] = int64(len(s))
	}
	return &pb.DataInfo{
		ClientSamples: counts,
		TestSamples:   int64(ds.Test.Len()),
		Classes:       int32(ds.Classes), // labels are at most data.MaxLabel
		Channels:      int32(c),
		Height:        int32(height),
		Width:         int32(width),
		Fingerprint:   hex.EncodeToString(h.Sum(nil)),
	}
}
