package aggregate

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// Policy names, as FedScale's gradient_policy flag spells them.
const (
	PolicyFedAvg  = ""         // FedAvg: the sample-weighted mean
	PolicyNone    = "none"     // the flag's default; same as PolicyFedAvg
	PolicyFedProx = "fed-prox" // FedAvg on the server; clients add the proximal term
	PolicyFedYogi = "fed-yogi"
	PolicyQFedAvg = "q-fedavg"

	// Robust policies, for rounds where some clients may be malicious
	// (names after Flower's strategies FedMedian, FedTrimmedAvg, Krum).
	PolicyFedMedian     = "fed-median"      // coordinate-wise median
	PolicyFedTrimmedAvg = "fed-trimmed-avg" // coordinate-wise mean after cutting TrimFraction from each end
	PolicyKrum          = "krum"            // the update closest to its n−f−2 nearest others (Blanchard et al. 2017)
	PolicyMultiKrum     = "multi-krum"      // the sample-weighted mean of the KrumKeep best-scored updates
)

// robustPolicies lists the robust policies for error messages.
const robustPolicies = PolicyFedMedian + ", " + PolicyFedTrimmedAvg + ", " + PolicyKrum + ", " + PolicyMultiKrum

// ParsePolicy maps a gradient_policy value, as FedScale's job files spell
// it, to its Policy constant: "", none, None and fed-avg mean FedAvg.
func ParsePolicy(s string) (string, error) {
	switch p := strings.ToLower(strings.TrimSpace(s)); p {
	case "", PolicyNone, "fed-avg", "fedavg":
		return PolicyFedAvg, nil
	case PolicyFedYogi, PolicyFedProx, PolicyQFedAvg,
		PolicyFedMedian, PolicyFedTrimmedAvg, PolicyKrum, PolicyMultiKrum:
		return p, nil
	}
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "", fmt.Errorf("unknown gradient policy %q; valid: none (fed-avg), %s, %s, %s, %s", s, PolicyFedYogi, PolicyFedProx, PolicyQFedAvg, robustPolicies)
}

// ErrNoUpdates is returned when a round has no updates to aggregate.
var ErrNoUpdates = errors.New("no updates")

// Update is one client's contribution to a round.
type Update struct {
	ClientID   int64
	Weights    tensor.List // the client's model after local training
	NumSamples int64       // the client's training sample count (FedAvg weight)
	Loss       float64     // the client's moving training loss (q-FedAvg uses it)
}

// ClientError reports an update that failed validation. The aggregator can
// use errors.As to find the client, drop its update and aggregate the rest.
type ClientError struct {
	ClientID int64
	Err      error
}

func (e *ClientError) Error() string { return fmt.Sprintf("client %d: %v", e.ClientID, e.Err) }
func (e *ClientError) Unwrap() error { return e.Err }

// Options selects and configures the policy. New uses every field as given
// (zero is a legal value for the betas and for q), so start from
// DefaultOptions to get FedScale's defaults.
type Options struct {
	Policy string // one of the Policy constants

	// FedYogi: server learning rate, adaptivity, first and second moment decay.
	YogiEta, YogiTau, YogiBeta, YogiBeta2 float64

	// q-FedAvg fairness exponent; 0 reduces it to an unweighted mean.
	QFedQ float64

	// FedProx: the proximal coefficient of the clients' local objective.
	ProxMu float64

	// FedTrimmedAvg: the fraction of the values cut from each end, per
	// element, in [0, 0.5) (job file: trim_fraction).
	TrimFraction float64
	// Krum and Multi-Krum: f, the malicious clients tolerated; a round
	// needs more than 2f+2 updates (num_malicious_clients).
	KrumMalicious int
	// Multi-Krum: m, how many best-scored updates are averaged; 0 means
	// n−f, the paper's choice (num_clients_to_keep).
	KrumKeep int

	// ClipNorm, under every policy: an update whose L2 distance from the
	// global model exceeds it is scaled back to that distance before the
	// policy sees it; 0 turns it off (clip_norm).
	ClipNorm float64
}

// DefaultOptions returns FedAvg with FedScale's defaults for the other
// policies' parameters (yogi_eta 3e-3, yogi_tau 1e-8, yogi_beta 0.9,
// yogi_beta2 0.99, qfed_q 1.0, proxy_mu 0.1) and ours for the robust ones
// (trim_fraction 0.1, num_malicious_clients 1, num_clients_to_keep 0 = n−f,
// clip_norm 0 = off).
func DefaultOptions() Options {
	return Options{YogiEta: 3e-3, YogiTau: 1e-8, YogiBeta: 0.9, YogiBeta2: 0.99, QFedQ: 1.0, ProxMu: 0.1,
		TrimFraction: 0.1, KrumMalicious: 1}
}

// ClientProxMu is the proximal coefficient clients train with under these
// options: ProxMu for FedProx, 0 (plain local SGD) for every other policy.
func (o Options) ClientProxMu() float64 {
	if o.Policy == PolicyFedProx {
		return o.ProxMu
	}
	return 0
}

// Server turns one round's updates into the next global model. Calls on one
// Server are serialized internally, so State may be called from a
// checkpointing goroutine while rounds run.
type Server interface {
	// Step returns the next global model. updates are in a fixed order
	// chosen by the caller (client id order); the result depends only on
	// the values and that order (bit-identical across runs and GOMAXPROCS).
	// global is not modified. lr is the clients' learning rate for this
	// round (only q-FedAvg uses it). On error the server's state is
	// unchanged.
	Step(global tensor.List, updates []Update, lr float64) (tensor.List, error)
	// State returns a copy of the optimizer state to checkpoint, or nil
	// if there is none (stateless policies, or FedYogi before its first
	// step). Tensor names are stable across versions.
	State() tensor.List
	// Restore replaces the optimizer state with one State returned;
	// nil or empty resets it.
	Restore(tensor.List) error
}

// New returns the Server for opt.Policy, behind the norm bound when
// opt.ClipNorm is set. An unknown policy or an invalid parameter for the
// chosen policy is an error.
func New(opt Options) (Server, error) {
	if !(opt.ClipNorm >= 0) || math.IsInf(opt.ClipNorm, 0) {
		return nil, fmt.Errorf("aggregate: clip_norm %v, want finite >= 0 (0 = off)", opt.ClipNorm)
	}
	s, err := newPolicy(opt)
	if err != nil || opt.ClipNorm == 0 {
		return s, err
	}
	return &clipped{Server: s, bound: opt.ClipNorm}, nil
}

func newPolicy(opt Options) (Server, error) {
	switch opt.Policy {
	case PolicyFedAvg, PolicyNone, PolicyFedProx:
		// FedProx differs from FedAvg only in the clients' local objective.
		name := opt.Policy
		if name == PolicyFedAvg || name == PolicyNone {
			name = "fedavg"
		}
		return meanServer{name: name}, nil
	case PolicyFedYogi:
		return newYogi(opt)
	case PolicyQFedAvg:
		return newQFedAvg(opt)
	case PolicyFedMedian:
		return medianServer(), nil
	case PolicyFedTrimmedAvg:
		return newTrimmedAvg(opt.TrimFraction)
	case PolicyKrum, PolicyMultiKrum:
		return newKrum(opt)
	}
	return nil, fmt.Errorf("aggregate: unknown policy %q (valid: %q or %q for FedAvg, %q, %q, %q), or robust ones: %s",
		opt.Policy, PolicyFedAvg, PolicyNone, PolicyFedProx, PolicyFedYogi, PolicyQFedAvg, robustPolicies)
}

// meanServer is FedAvg (and FedProx, whose server side is identical).
type meanServer struct{ name string }

func (s meanServer) Step(global tensor.List, updates []Update, _ float64) (tensor.List, error) {
	weights, total, err := checkRound(global, updates)
	if err != nil {
		return nil, fmt.Errorf("aggregate: %s step: %w", s.name, err)
	}
	out := global.ZerosLike()
	if err := weightedMean(out, updates, weights, total); err != nil {
		return nil, fmt.Errorf("aggregate: %s step: %w", s.name, err)
	}
	return out, nil
}

func (meanServer) State() tensor.List { return nil }

func (s meanServer) Restore(state tensor.List) error { return restoreStateless(s.name, state) }

// stateless is a policy without optimizer state whose step needs neither
// the learning rate nor a lock (the robust ones).
type stateless struct {
	name string
	step func(global tensor.List, updates []Update) (tensor.List, error)
}

func (s stateless) Step(global tensor.List, updates []Update, _ float64) (tensor.List, error) {
	out, err := s.step(global, updates)
	if err != nil {
		return nil, fmt.Errorf("aggregate: %s step: %w", s.name, err)
	}
	return out, nil
}

func (stateless) State() tensor.List { return nil }

func (s stateless) Restore(state tensor.List) error { return restoreStateless(s.name, state) }

func restoreStateless(name string, state tensor.List) error {
	if len(state) > 0 {
		return fmt.Errorf("aggregate: %s keeps no state, got %d tensors", name, len(state))
	}
	return nil
}

// checkRound validates what every policy's Step needs: a well-formed, finite
// global model and well-formed updates from distinct clients, and returns
// the FedAvg weights as checkUpdates does. Duplicate ids are rejected because
// a late or repeated upload must not count twice (a defect of the original).
func checkRound(global tensor.List, updates []Update) (weights []float64, total float64, err error) {
	if err := checkModel(global); err != nil {
		return nil, 0, fmt.Errorf("global model: %w", err)
	}
	if err := global.CheckFinite(); err != nil {
		return nil, 0, fmt.Errorf("global model: %w", err)
	}
	if weights, total, err = checkUpdates(global, updates); err != nil {
		return nil, 0, err
	}
	seen := make(map[int64]bool, len(updates))
	for _, u := range updates {
		if seen[u.ClientID] {
			return nil, 0, &ClientError{u.ClientID, errors.New("more than one update in this round")}
		}
		seen[u.ClientID] = true
	}
	return weights, total, nil
}

// checkModel reports whether every tensor's data length matches its shape
// (CheckCompatible checks only its argument, so compare ref with itself).
func checkModel(ref tensor.List) error { return ref.CheckCompatible(ref) }

// checkUpdates validates the updates' structure against ref (names, shapes,
// sample counts) and returns the FedAvg weights and their sum. Finiteness is
// checked by the kernels while they stream the data, so the data is read once.
func checkUpdates(ref tensor.List, updates []Update) (weights []float64, total float64, err error) {
	if len(updates) == 0 {
		return nil, 0, ErrNoUpdates
	}
	weights = make([]float64, len(updates))
	for i, u := range updates {
		if err := ref.CheckCompatible(u.Weights); err != nil {
			return nil, 0, &ClientError{u.ClientID, err}
		}
		if u.NumSamples <= 0 {
			return nil, 0, &ClientError{u.ClientID, fmt.Errorf("sample count %d, want > 0", u.NumSamples)}
		}
		weights[i] = float64(u.NumSamples)
		total += weights[i]
	}
	return weights, total, nil
}

// firstNonFinite names the first update, in the caller's order, holding a NaN
// or Inf. The kernels only notice that some value in a block went
// non-finite; this slow path runs on error only and gives an answer that does
// not depend on which worker noticed first.
func firstNonFinite(updates []Update) error {
	for _, u := range updates {
		if err := u.Weights.CheckFinite(); err != nil {
			return &ClientError{u.ClientID, err}
		}
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
