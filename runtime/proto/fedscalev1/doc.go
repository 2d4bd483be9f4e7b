// Package fedscalev1 holds the generated gRPC code of the aggregator-executor
// protocol (fedscale.proto) and small conversions between its messages and
// runtime types. Regenerate with `make proto`.
package fedscalev1

//go:generate make -C ../../.. proto
