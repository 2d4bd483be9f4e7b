package aggregator

// What the job file fixes of the job's data, which no executor's word can
// change: the one place that decides what a Hello's data description is
// held to before state.agree's majority rule gets a say.

import (
	"fmt"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/datadesc"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// jobData is the job's data as the aggregator knows it without asking an
// executor.
type jobData struct {
	// shape is the model's input and output size the job file fixes
	// (datadesc.Shape); 0 where it leaves a figure to the data.
	shape dataKey
	from  string // the keys shape comes from, for messages
	// derived is, in simulation, the description an honest executor
	// registers with, which the aggregator made itself from data_dir;
	// nil when it cannot read data_dir (the executors' hosts may be the
	// only ones holding it), and in deployment, where each device's data
	// is its own.
	derived *pb.DataInfo
	// unread is why derived is nil in simulation, for the log.
	unread error
	// pin is job_conf.data_fingerprint ("" none): in simulation the
	// only digest the job's data may have.
	pin string
}

// newJobData works out what job file c fixes of the data. Its error is a
// job file that cannot be right (an unknown data_set, data_dir's data
// contradicting num_classes or data_fingerprint); data_dir being
// unreadable here is not one.
func newJobData(c config.Conf) (jobData, error) {
	classes, channels, height, width, from, err := datadesc.Shape(c)
	if err != nil {
		return jobData{}, err
	}
	j := jobData{shape: dataKey{classes: int32(classes), channels: int32(channels), height: int32(height), width: int32(width)}, from: from}
	if c.ExperimentMode != config.Simulation {
		return j, nil
	}
	j.pin = c.DataFingerprint
	ds, err := data.Open(datadesc.Options(c))
	if err != nil {
		j.unread = err
		return j, nil
	}
	// The same description an honest executor computes from the same
	// job file: any other is not this job's data.
	if j.derived, err = datadesc.Describe(c, ds); err != nil {
		return jobData{}, err
	}
	return j, nil
}

// check holds an executor's data description to what the job file fixes:
// the model's input and output sizes, then (simulation) the pinned digest.
// The derived description is the job's from the start (state.data), so
// agreement with it is state.checkData's.
func (j *jobData) check(d *pb.DataInfo) error {
	for _, f := range []struct {
		what      string
		got, want int32
	}{
		{"classes", d.GetClasses(), j.shape.classes},
		{"input channels", d.GetChannels(), j.shape.channels},
		{"input height", d.GetHeight(), j.shape.height},
		{"input width", d.GetWidth(), j.shape.width},
	} {
		if f.want != 0 && f.got != f.want {
			return fmt.Errorf("reports %d %s but the job file (%s) makes %d", f.got, f.what, j.from, f.want)
		}
	}
	if j.pin != "" && d.GetFingerprint() != j.pin {
		return fmt.Errorf("loaded data with digest %.12s, not the one job_conf.data_fingerprint pins (%.12s): point every executor at the same data_dir", d.GetFingerprint(), j.pin)
	}
	return nil
}

// note is the log line that says where the job's data comes from.
func (j *jobData) note(c config.Conf) string {
	switch {
	case c.ExperimentMode != config.Simulation:
		return ""
	case j.derived != nil:
		return fmt.Sprintf("The job's data is data_dir %s as the aggregator reads it (%d clients, %d test samples, digest %s): every executor must report the same",
			c.DataDir, len(j.derived.GetClientSamples()), j.derived.GetTestSamples(), j.derived.GetFingerprint())
	case j.pin != "":
		return fmt.Sprintf("The aggregator cannot read job_conf.data_dir here (%v): the job's data is what a majority of the executors report, with the digest job_conf.data_fingerprint pins", j.unread)
	}
	return fmt.Sprintf("The aggregator cannot read job_conf.data_dir here (%v): the job's data is what a strict majority of the executors report (job_conf.data_fingerprint would pin it)", j.unread)
}
