// Package aggregate is the server side of a federated round: it turns the
// client updates of one round into the next global model.
//
// It holds the aggregation policies FedScale's gradient_policy flag selects
// (FedAvg, FedProx, FedYogi, q-FedAvg), the robust ones FedScale lacks
// (coordinate-wise median and trimmed mean, Krum, Multi-Krum), the per-update
// norm bound any of them can run behind, and everything about them, for the
// rest of the runtime to read: their names as job files spell them
// (ParsePolicy), their parameters and defaults (Options, DefaultOptions),
// the term a policy asks of the clients (Options.ClientProxMu), their
// optimizer state for checkpoints, and WeightedMean, the blocked, parallel
// and deterministic kernel they are built on. It does not choose clients, talk to executors or
// decay the learning rate; those belong to the aggregator.
//
// Two of the original's defects are fixed here: FedAvg weights each update by
// its sample count (the original averaged unweighted), and every update is
// validated (names, shapes, sample count, finiteness) before it can touch the
// model, so one broken client cannot silently poison a round.
//
// Determinism: every output element is a float64 sum over the updates in the
// caller's order, and products are rounded explicitly before they are added
// (so no platform fuses them into an FMA). Work is split across goroutines by
// element blocks only, so results are bit-identical for any GOMAXPROCS.
package aggregate
