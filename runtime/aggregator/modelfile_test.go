package aggregator_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fedscale/fedscale-go/runtime/aggregator"
	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/datadesc"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/safetensors"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// testSpec is the model spec the aggregator derives from the test data,
// with extra classes.
func testSpec(t *testing.T, name string, extra int) model.Spec {
	_, ds := testData(t)
	d := datadesc.Info(ds)
	return model.Spec{Name: name, Channels: int(d.GetChannels()), Height: int(d.GetHeight()), Width: int(d.GetWidth()), Classes: int(d.GetClasses()) + extra}
}

func sameValues(t *testing.T, what string, want, got tensor.List) {
	t.Helper()
	if err := want.CheckCompatible(got); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for i := range want {
		for j := range want[i].Data {
			if math.Float32bits(want[i].Data[j]) != math.Float32bits(got[i].Data[j]) {
				t.Fatalf("%s: %s[%d] = %v, want %v", what, want[i].Name, j, got[i].Data[j], want[i].Data[j])
			}
		}
	}
}

// readModel reads a model file back in the order of want's names.
func readModel(t *testing.T, path string, want tensor.List) (tensor.List, map[string]string) {
	t.Helper()
	l, meta, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := safetensors.Match(want, l)
	if err != nil {
		t.Fatal(err)
	}
	return m, meta
}

// The global model is written as safetensors beside the aggregator's log:
// at every checkpoint and at the end of the job.
func TestModelFile(t *testing.T) {
	for _, save := range []bool{true, false} {
		name := "end only"
		if save {
			name = "checkpoints"
		}
		t.Run(name, func(t *testing.T) {
			c := baseConf(t)
			c.SaveCheckpoint = save
			c.Rounds = 4
			res := runJob(t, c, 1, 1)
			want := filepath.Join(c.LogPath, "logs", c.JobName, c.TimeStamp, "aggregator", "model.safetensors")
			if res.ModelFile != want {
				t.Fatalf("ModelFile = %q, want %q", res.ModelFile, want)
			}
			got, meta := readModel(t, res.ModelFile, res.FinalModel)
			sameValues(t, "model file", res.FinalModel, got)
			if meta["format"] != "pt" || meta["model"] != "logistic" || meta["round"] != "4" {
				t.Errorf("metadata %v", meta)
			}
			log, _ := os.ReadFile(filepath.Join(res.LogDir, "aggregator", "log"))
			saves := strings.Count(string(log), "Saved the model of round ")
			if want := map[bool]int{true: 3, false: 1}[save]; saves != want { // rounds 0, 2, 4; or the end
				t.Errorf("model saved %d times, want %d:\n%s", saves, want, log)
			}
			entries, _ := os.ReadDir(filepath.Dir(res.ModelFile))
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

// model_init_file starts the job from the file's model: the weights sent
// for round 1's training are exactly the file's.
func TestModelInitFile(t *testing.T) {
	c := baseConf(t)
	c.Rounds = 1
	c.NumParticipants = 2
	init, err := model.Init(testSpec(t, c.Model, 0), 12345)
	if err != nil {
		t.Fatal(err)
	}
	c.ModelInitFile = filepath.Join(t.TempDir(), "init.safetensors")
	if err := safetensors.WriteFile(c.ModelInitFile, init, nil); err != nil {
		t.Fatal(err)
	}
	j := startAggregator(t, c, 1, nil)
	s, _ := rawSession(t, j, helloFor(t, j.conf, 1))
	var first tensor.List
	serveRaw(s, func(tt *pb.TrainTask, params tensor.List) []*pb.TrainResult {
		if first == nil {
			first = params
		}
		return []*pb.TrainResult{{Round: tt.GetRound(), TaskId: tt.GetTaskId(), ClientId: tt.GetClientId(), NumSamples: clientSamples(t, tt.GetClientId())}}
	})
	j.wait(t)
	sameValues(t, "round 1's model", init, first)
	log, _ := os.ReadFile(filepath.Join(c.LogDir(), "aggregator", "log"))
	if !strings.Contains(string(log), "Starting from the model in "+c.ModelInitFile) {
		t.Errorf("the log does not say where the model came from:\n%s", log)
	}
}

// A job started from its own exported model resumes training from it; a
// checkpoint of the same job started from another file is not resumed.
func TestModelInitFileFingerprint(t *testing.T) {
	c := baseConf(t)
	c.Rounds = 2
	first := runJob(t, c, 1, 1)

	c.SaveCheckpoint = true
	c.TimeStamp = "run2"
	c.ModelInitFile = first.ModelFile
	second := runJob(t, c, 1, 1)
	if second.ResumedAt != 0 || second.RoundsTrained != 2 {
		t.Fatalf("second run resumed at %d, trained %d", second.ResumedAt, second.RoundsTrained)
	}
	c.TimeStamp = "run3"
	c.Rounds = 3
	third := runJob(t, c, 1, 1)
	if third.ResumedAt != 2 || third.RoundsTrained != 1 {
		t.Errorf("same init file: resumed at %d, trained %d; want a resume after round 2", third.ResumedAt, third.RoundsTrained)
	}
	c.TimeStamp = "run4"
	c.ModelInitFile = second.ModelFile
	fourth := runJob(t, c, 1, 1)
	if fourth.ResumedAt != 0 || fourth.RoundsTrained != 3 {
		t.Errorf("another init file: resumed at %d, trained %d; want a fresh start", fourth.ResumedAt, fourth.RoundsTrained)
	}
}

// A file that does not exist, is not safetensors or holds non-finite values
// is refused by New; one that does not fit the model fails the job at its
// start. Every error names the key, and the file's problem by tensor.
func TestModelInitFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, l tensor.List) string {
		p := filepath.Join(dir, name)
		if err := safetensors.WriteFile(p, l, nil); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, err := model.Zeros(testSpec(t, "logistic", 0))
	if err != nil {
		t.Fatal(err)
	}
	nan := good.Clone()
	nan[0].Data[3] = float32(math.NaN())
	other, err := model.Zeros(testSpec(t, "logistic", 1))
	if err != nil {
		t.Fatal(err)
	}
	renamed := good.Clone()
	renamed[1].Name = "linear.bias"
	garbage := filepath.Join(dir, "garbage.safetensors")
	os.WriteFile(garbage, []byte("not a model"), 0o644)
	fifo := filepath.Join(dir, "fifo.safetensors") // opening it would block
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	atNew := []struct {
		name, path string
		want       []string
	}{
		{"missing", filepath.Join(dir, "none.safetensors"), []string{"job_conf.model_init_file", "none.safetensors", "no such file"}},
		{"garbage", garbage, []string{"job_conf.model_init_file", garbage, "header length"}},
		{"a folder", dir, []string{"job_conf.model_init_file", dir, "not a regular file"}},
		{"a FIFO", fifo, []string{"job_conf.model_init_file", fifo, "not a regular file"}},
		{"non-finite", write("nan.safetensors", nan), []string{"job_conf.model_init_file", "nan.safetensors", good[0].Name, "non-finite"}},
	}
	for _, tt := range atNew {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConf(t)
			c.ModelInitFile = tt.path
			_, err := aggregator.New(aggregator.Options{Conf: c, Executors: 1})
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("New error %v, want one containing %q", err, w)
				}
			}
		})
	}

	atStart := []struct {
		name, path string
		want       []string
	}{
		{"other shapes", write("other.safetensors", other), []string{"job_conf.model_init_file", "other.safetensors", "does not fit model logistic",
			fmt.Sprintf("%s has shape %v, the model wants %v", good[0].Name, other[0].Shape, good[0].Shape)}},
		{"other names", write("renamed.safetensors", renamed), []string{"1 tensor(s) missing: " + good[1].Name, "1 unexpected tensor(s): linear.bias"}},
	}
	for _, tt := range atStart {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConf(t)
			c.ModelInitFile = tt.path
			j := startAggregator(t, c, 1, nil)
			s, _ := rawSession(t, j, helloFor(t, j.conf, 1))
			go serveRaw(s, func(*pb.TrainTask, tensor.List) []*pb.TrainResult { return nil })
			select {
			case <-j.done:
			case <-time.After(20 * time.Second):
				t.Fatal("the job did not fail")
			}
			for _, w := range tt.want {
				if j.err == nil || !strings.Contains(j.err.Error(), w) {
					t.Fatalf("job error %v, want one containing %q", j.err, w)
				}
			}
		})
	}
}

// The key is one of ours: parsed as an optional path like data_map_file.
func TestModelInitFileKey(t *testing.T) {
	c := config.Default()
	for in, want := range map[string]string{"none": "", "/m/x.safetensors": "/m/x.safetensors"} {
		if err := c.Set("model_init_file", in); err != nil || c.ModelInitFile != want {
			t.Errorf("Set(%q): %q, %v; want %q", in, c.ModelInitFile, err, want)
		}
	}
}

// The file a resnet18 job writes at its end has torchvision's names,
// shapes and dtypes. The executor here echoes the model (no training: the
// point is the export path at full size). With
// FEDSCALE_SAFETENSORS_JOB_FOR_TORCH set (scripts/golden/check_safetensors.py
// roundtrip) the file is copied there for PyTorch to load.
func TestModelFileResNet18(t *testing.T) {
	if testing.Short() {
		t.Skip("moves a 45 MB model over gRPC")
	}
	spec := model.Spec{Name: "resnet18", Channels: 3, Height: 32, Width: 32, Classes: 62}
	if err := model.CheckName(spec.Name); err != nil {
		t.Skipf("no resnet18 yet: %v", err)
	}
	c := baseConf(t)
	c.Model = spec.Name
	// femnist's 3x32x32 input and 62 classes, which the executor below
	// claims for the grey test data: a data_dir the aggregator cannot
	// read leaves the data to the executors.
	c.GreyInput, c.DataSet, c.DataDir = false, "femnist", filepath.Join(t.TempDir(), "on-the-executor")
	c.Rounds = 1
	c.NumParticipants = 2
	c.Overcommitment = 1
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.PsIP, c.PsPort = "127.0.0.1", lis.Addr().(*net.TCPAddr).Port
	// ExecutorWait as long as the test's context: under -race on a loaded
	// machine, initialising resnet18 once took the whole minute before the
	// loop saw the Hello.
	// ExecutorTimeout too: the raw executor below never heartbeats, so an
	// initialisation slower than the default 10 s (resnet18 under -race on
	// a loaded machine: 22 s) would count it lost.
	agg, err := aggregator.New(aggregator.Options{Conf: c, Executors: 1, Log: fedlog.New(testWriter{t}), ExecutorWait: 4 * time.Minute,
		ExecutorTimeout: 4 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(pb.MaxMessageBytes), grpc.MaxSendMsgSize(pb.MaxMessageBytes))
	pb.RegisterAggregatorServer(srv, agg)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	type result struct {
		res aggregator.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := agg.Run(ctx)
		done <- result{res, err}
	}()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(pb.MaxMessageBytes), grpc.MaxCallSendMsgSize(pb.MaxMessageBytes)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := pb.NewAggregatorClient(conn).Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hello := helloFor(t, c, 1)
	hello.Data.Channels, hello.Data.Height, hello.Data.Width, hello.Data.Classes = 3, 32, 32, 62
	if err := s.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	go serveRaw(s, func(tt *pb.TrainTask, params tensor.List) []*pb.TrainResult {
		return []*pb.TrainResult{{Round: tt.GetRound(), TaskId: tt.GetTaskId(), ClientId: tt.GetClientId(), NumSamples: clientSamples(t, tt.GetClientId())}}
	})
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	want, err := model.Zeros(spec)
	if err != nil {
		t.Fatal(err)
	}
	got, meta := readModel(t, r.res.ModelFile, want)
	sameValues(t, "model file", r.res.FinalModel, got)
	if meta["model"] != "resnet18" || meta["round"] != "1" {
		t.Errorf("metadata %v", meta)
	}
	b, err := os.ReadFile(r.res.ModelFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range want {
		dt := `"` + x.Name + `":{"dtype":"F32"`
		if model.IsBatchCounter(x.Name) {
			dt = `"` + x.Name + `":{"dtype":"I64","shape":[]`
		}
		if !strings.Contains(string(b[:min(len(b), 1<<16)]), dt) {
			t.Errorf("the header lacks %s", dt)
		}
	}
	if out := os.Getenv("FEDSCALE_SAFETENSORS_JOB_FOR_TORCH"); out != "" {
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
