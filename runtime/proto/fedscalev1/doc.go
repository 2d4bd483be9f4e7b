// Package fedscalev1 holds the generated gRPC code of the aggregator-executor
// protocol (fedscale.proto), small conversions between its messages and
// runtime types, and the wire's limits: models and updates travel as a
// layout then chunks of at most ChunkValues values (Chunks, Assembly), and
// no message exceeds MaxMessageBytes; the heartbeat interval is bounded
// (MaxHeartbeatInterval) and so is an aggregator's silence (SilenceLimit).
// Regenerate with `make proto`.
package fedscalev1

//go:generate make -C ../../.. proto
