package aggregator

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/datadesc"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// What the job file fixes of the data: the model's sizes from data_set's
// pipeline and num_classes, and, when the aggregator can read data_dir in
// simulation, the whole description an honest executor reports.
func TestJobData(t *testing.T) {
	dir := t.TempDir()
	if err := jobtest.WriteSynthetic(dir, jobtest.SynthOptions{Clients: 3, PerClient: 4, Test: 5, Classes: 4, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	digest := datadesc.Info(ds).GetFingerprint() // the grey pipeline's
	grey := func(c *config.Conf) { c.GreyInput, c.DataDir = true, dir }
	for _, tc := range []struct {
		name    string
		edit    func(c *config.Conf)
		shape   dataKey
		derived bool
		err     string
	}{
		{"grey, readable", grey, dataKey{channels: 1}, true, ""},
		{"grey, num_classes", func(c *config.Conf) { grey(c); c.NumClasses = 9 }, dataKey{classes: 9, channels: 1}, true, ""},
		{"femnist, unreadable", func(c *config.Conf) { c.DataSet, c.DataDir = "femnist", filepath.Join(dir, "missing") },
			dataKey{classes: 62, channels: 3, height: 32, width: 32}, false, ""},
		{"cifar10, num_classes", func(c *config.Conf) {
			c.DataSet, c.DataDir, c.NumClasses = "cifar10", filepath.Join(dir, "missing"), 20
		},
			dataKey{classes: 20, channels: 3, height: 32, width: 32}, false, ""},
		{"unknown data_set", func(c *config.Conf) { c.DataSet = "femnist2" }, dataKey{}, false, "job_conf.data_set"},
		{"labels beyond num_classes", func(c *config.Conf) { grey(c); c.NumClasses = 2 }, dataKey{}, false, "job_conf.num_classes is 2"},
		{"pinned, matching", func(c *config.Conf) { grey(c); c.DataFingerprint = digest }, dataKey{channels: 1}, true, ""},
		{"pinned, other data", func(c *config.Conf) { grey(c); c.DataFingerprint = strings.Repeat("0", 64) }, dataKey{}, false,
			"job_conf.data_fingerprint is " + strings.Repeat("0", 64) + " but the data in " + dir + " has digest " + digest},
		{"deployment", func(c *config.Conf) { grey(c); c.ExperimentMode = config.Deployment }, dataKey{channels: 1}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.edit(&c)
			j, err := newJobData(c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("newJobData = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j.shape != tc.shape {
				t.Errorf("shape %+v, want %+v", j.shape, tc.shape)
			}
			if got := j.derived != nil; got != tc.derived {
				t.Fatalf("derived: %v, want %v (unread: %v)", got, tc.derived, j.unread)
			}
			if j.derived != nil && j.derived.GetFingerprint() != digest {
				t.Errorf("derived digest %s, want the executors' %s", j.derived.GetFingerprint(), digest)
			}
			if note := j.note(c); c.ExperimentMode == config.Simulation && (note == "" || !strings.Contains(note, map[bool]string{true: "as the aggregator reads it", false: "majority"}[j.derived != nil])) {
				t.Errorf("log line %q", note)
			}
		})
	}
}

// A description is held to the sizes the job file fixes and to the pinned
// digest; figures the job file leaves to the data are not checked here.
func TestJobDataCheck(t *testing.T) {
	femnist := jobData{shape: dataKey{classes: 62, channels: 3, height: 32, width: 32}, from: "data_set femnist"}
	pinned := jobData{shape: dataKey{channels: 1}, from: "grey_input and num_classes", pin: strings.Repeat("a", 64)}
	info := func(classes, c, h, w int32, digest string) *pb.DataInfo {
		return &pb.DataInfo{ClientSamples: []int64{3}, Classes: classes, Channels: c, Height: h, Width: w, Fingerprint: digest}
	}
	for _, tc := range []struct {
		name string
		j    jobData
		d    *pb.DataInfo
		want string
	}{
		{"femnist as the job file says", femnist, info(62, 3, 32, 32, "x"), ""},
		{"other classes", femnist, info(10, 3, 32, 32, "x"), "reports 10 classes but the job file (data_set femnist) makes 62"},
		{"grey input", femnist, info(62, 1, 32, 32, "x"), "reports 1 input channels"},
		{"other height", femnist, info(62, 3, 28, 32, "x"), "reports 28 input height"},
		{"other width", femnist, info(62, 3, 32, 28, "x"), "reports 28 input width"},
		{"grey, any size and classes", pinned, info(7, 1, 20, 20, strings.Repeat("a", 64)), ""},
		{"other digest than the pin", pinned, info(7, 1, 20, 20, strings.Repeat("b", 64)), "not the one job_conf.data_fingerprint pins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.j.check(tc.d)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("check = %v, want %q", err, tc.want)
			}
		})
	}
}
