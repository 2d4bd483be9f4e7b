#!/usr/bin/env bash
# The demo behind `make demo`: a whole federated job on real MNIST (or
# DATASET=fashion; MODEL=resnet18 for a torchvision model) with 1
# aggregator and 2 executor processes on this machine, failing unless the
# final top_1 reaches the dataset's bar: internal/cmd/demo (its doc lists
# DATASET, MODEL, BIN, WORK, PORT, ROUNDS).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${GO:-go}" run ./internal/cmd/demo
