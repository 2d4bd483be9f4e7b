package aggregator

// Checkpoints: where they live, what they hold, and saving and restoring
// the job's state.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

const checkpointFormat = 1

// checkpointPath is per job, not per run: a restarted aggregator of the
// same job (a new time stamp) must find it.
func (e *env) checkpointPath() string {
	return filepath.Join(e.conf.LogPath, "logs", e.conf.JobName, "checkpoint", "aggregator.ckpt")
}

// fingerprint digests what shapes the model's trajectory: the job_conf
// keys that config marks so (not the round count or the evaluation
// cadence, so a job can be resumed with more rounds), the data and the
// initial model.
func (st *state) fingerprint() string {
	h := sha256.New()
	st.conf.WriteFingerprint(h)
	fmt.Fprintf(h, "data=%s", st.data.GetFingerprint())
	if st.initDigest != "" {
		// Only with the key, so existing checkpoints keep their fingerprint.
		fmt.Fprintf(h, " init=%s", st.initDigest)
	}
	// Deployment: every device's data, in rank order, not just the first
	// to register.
	st.mode.fingerprint(h)
	return hex.EncodeToString(h.Sum(nil))
}

func (st *state) checkpoint() *pb.Checkpoint {
	return &pb.Checkpoint{
		FormatVersion:  checkpointFormat,
		Fingerprint:    st.fingerprint(),
		JobName:        st.conf.JobName,
		TimeStamp:      st.timeStamp,
		Round:          int64(st.round),
		VirtualClock:   st.clock,
		LearningRate:   st.lr,
		Model:          pb.FromTensors(st.model),
		OptimizerState: pb.FromTensors(st.server.State()),
		WallSeconds:    st.wall(),
	}
}

func (st *state) restore(ck *pb.Checkpoint) error {
	if r := ck.GetRound(); r < 0 || int64(int(r)) != r {
		return fmt.Errorf("round %d is out of range", r)
	}
	m, err := pb.ToTensors(ck.GetModel())
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := st.model.CheckCompatible(m); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if s := ck.GetOptimizerState(); len(s) > 0 {
		os, err := pb.ToTensors(s)
		if err != nil {
			return fmt.Errorf("optimizer state: %w", err)
		}
		if err := st.server.Restore(os); err != nil {
			return fmt.Errorf("optimizer state: %w", err)
		}
	}
	st.model = m
	st.round = int(ck.GetRound())
	st.version = ck.GetRound()
	st.clock = ck.GetVirtualClock()
	st.lr = ck.GetLearningRate()
	st.wallOffset = ck.GetWallSeconds()
	return nil
}

// saveCheckpoint writes atomically: a crash mid-write leaves the previous
// checkpoint intact.
func saveCheckpoint(path string, ck *pb.Checkpoint) error {
	b, err := proto.Marshal(ck)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return writeAtomic(path, b)
}

// writeAtomic replaces the file at path with b, or leaves it as it was.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ckpt-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loadCheckpoint returns the checkpoint at path if there is one for this
// configuration. ok is false when there is none; an error explains a
// checkpoint that exists but cannot be used.
func loadCheckpoint(path, fingerprint string) (*pb.Checkpoint, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	ck := &pb.Checkpoint{}
	if err := proto.Unmarshal(b, ck); err != nil {
		return nil, false, fmt.Errorf("checkpoint %s is corrupt: %w", path, err)
	}
	if ck.GetFormatVersion() != checkpointFormat {
		return nil, false, fmt.Errorf("checkpoint %s has format %d, want %d", path, ck.GetFormatVersion(), checkpointFormat)
	}
	if ck.GetFingerprint() != fingerprint {
		return nil, false, fmt.Errorf("checkpoint %s belongs to another configuration of job %s (round %d, clock %s); starting from round 0",
			path, ck.GetJobName(), ck.GetRound(), fedlog.PyFloat(ck.GetVirtualClock()))
	}
	return ck, true, nil
}
