#!/usr/bin/env bash
# fedscale-ref: wall time of the ORIGINAL FedScale (Python) next to ours on
# one example job, same job file, same data, same traces, same machine.
#
# Usage (from anywhere, as a user who can write build/):
#   scripts/fedscale-ref/run.sh            # prepare, then FedScale, then ours
#   scripts/fedscale-ref/run.sh fedscale   # prepare, FedScale only
#   scripts/fedscale-ref/run.sh ours       # prepare, ours only
#   ROUNDS=5 scripts/fedscale-ref/run.sh   # fewer rounds for both
#   OURS_REV=HEAD scripts/fedscale-ref/run.sh
#                     # ours built from that commit (git archive into
#                     # build/fedscale-ref/ours-<rev>), not the working tree
# The two runs go one after the other, never together; keep the machine
# otherwise idle while they run.
#
# Needs (Debian 12): /usr/bin/python3 with python3-torch, python3-torchvision,
# python3-numpy, python3-yaml, python3-pil, plus
#   apt-get install python3-grpcio python3-protobuf dataset-fashion-mnist
# Go (make build), git, /usr/bin/time. FedScale's source comes from the bare
# mirror FEDSCALE_MIRROR (default /work/.mirror/SymbioticLab+FedScale/repo),
# extracted file by file: `git archive HEAD` stops at a blob the mirror lacks
# (benchmark/dataset/data/device_info/client_behave_trace), which we do not
# need anyway.
#
# What it does (everything lands under build/fedscale-ref, git-ignored):
#   src/      FedScale at the mirror's HEAD (commit in src/COMMIT), unmodified
#   data/femnist            bin/fsdata's FEMNIST layout from Fashion-MNIST
#                           (80 clients, 6000 train + 1000 test images)
#   data/device_info/       client_device_capacity, client_behave_trace:
#                           write_traces.py, FedScale's pickle format, the
#                           content of examples_test.go's writeTraces
#   femnist_k8s.yml         runtime/jobtest/testdata/fedscale/femnist_k8s.yml
#                           with /FedScale/benchmark/dataset/data -> data/,
#                           log_path -> runs/fedscale, local_steps 5 -> 20
#                           (and rounds -> $ROUNDS if set)
#   runs/fedscale/          FedScale's logs; *.out (stdout+stderr), *.time
#                           (/usr/bin/time -v), wall_s, loadavg and
#                           proc_stat (machine load at start and end)
#   runs/ours/              our logs (logs/femnist_k8s/ref/metrics.jsonl), same
#
# FedScale command lines: as docker/driver.py builds them for a local
# ("default" container) job with worker_ips [localhost:[2]]: every job_conf
# entry becomes "--key value" in file order after --time_stamp and --ps_ip,
# then the aggregator gets --this_rank=0 --num_executors=2
# --executor_configs=localhost:[2] and executor i gets --this_rank=i
# --num_executors=2 --cuda_device=cuda:0 (ignored: use_cuda False). We add
# --ps_port (FedScale's default 29500 might be taken). driver.py sleeps 10 s
# before it starts the executors; here all three start at once (executors
# retry registration every 5 s), like ours.
# PYTHONPATH puts stubs/ first: stand-ins for modules FedScale imports at
# the top but that Debian cannot provide (see each file's docstring):
#   wandb.py, tensorflow.py   unused on this path; any use raises
#   overrides.py              @overrides decorator, used at class definition;
#                             identity, like the real one at run time
#   sitecustomize.py + _torch_utils_tensorboard.py
#                             torch.utils.tensorboard (needs the tensorboard
#                             package): SummaryWriter calls are counted and
#                             dropped (TensorBoard event files only)
# No patch to FedScale's sources is needed (protobuf 3.21 loads its
# generated job_api_pb2.py as is).
#
# Wall time: from starting the three processes to the aggregator's exit.
# Top-1 (a fraction in both): FedScale's aggregator log lines "FL Testing in
# round: N"; ours, metrics.jsonl records that carry top_1.
# Round numbering differs: with rounds: 21 FedScale trains 20 rounds and tests
# at its "round 1" (the untrained model, ours' round 0), 10 (after 9 training
# rounds) and 20 (after 19); the 20th is never tested. Ours trains 21 rounds
# and tests at 0, 10, 20 and 21. FedScale also flips test images at random
# (its 'mnist' test transform has RandomHorizontalFlip), so its top-1 varies
# from run to run; ours evaluates without flips and repeats exactly.
#
# Measured 2026-12-01 (2-core VM, FedScale 7ec441c2, ours 9cf399980bd3, two
# runs each while the machine was otherwise idle, per proc_stat):
# FedScale 304.6 s and 285.6 s, ours 151.9 s and 155.3 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
ref=$root/build/fedscale-ref
mirror=${FEDSCALE_MIRROR:-/work/.mirror/SymbioticLab+FedScale/repo}
py=/usr/bin/python3
rounds=${ROUNDS:-}
fs_port=${FS_PORT:-29517}
our_port=${OUR_PORT:-29617}
which=${1:-both}

case $which in
both | fedscale | ours) ;;
*)
	echo "usage: $0 [both|fedscale|ours]" >&2
	exit 2
	;;
esac

src=$ref/src
data=$ref/data
job=$ref/femnist_k8s.yml
bin=$root/bin

prepare() {
	if [[ ! -f $src/COMMIT ]]; then
		echo "extracting FedScale from $mirror"
		rm -rf "$src"
		mkdir -p "$src"
		local mode type obj path
		git --git-dir="$mirror" ls-tree -r HEAD -- fedscale docker setup.py |
			while read -r mode type obj path; do
				[[ $type == blob && $mode != 120000 ]] || continue
				case $path in fedscale/edge/*) continue ;; esac
				mkdir -p "$src/$(dirname "$path")"
				git --git-dir="$mirror" cat-file blob "$obj" >"$src/$path"
			done
		git --git-dir="$mirror" rev-parse HEAD >"$src/COMMIT"
	fi

	if [[ -n ${OURS_REV:-} ]]; then
		# Build a committed revision in its own folder, immune to edits in
		# the working tree.
		local rev osrc
		rev=$(git -C "$root" rev-parse --short=12 "$OURS_REV")
		osrc=$ref/ours-$rev
		if [[ ! -x $osrc/bin/executor ]]; then
			rm -rf "$osrc"
			mkdir -p "$osrc"
			git -C "$root" archive "$rev" | tar -x -C "$osrc"
			make -C "$osrc" build VERSION="$rev" >/dev/null
		fi
		bin=$osrc/bin
	else
		make -C "$root" build >/dev/null
		bin=$root/bin
	fi
	echo "ours: $bin ($("$bin/aggregator" --version 2>&1 | head -n 1 || true))"

	if [[ ! -f $data/femnist/client_data_mapping/train.csv ]]; then
		"$bin/fsdata" --idx-dir /usr/share/datasets/fashion-mnist --label-names fashion \
			--train-samples 6000 --test-samples 1000 --out "$data/femnist" \
			--clients 80 --min-samples 21
	fi
	"$py" "$here/write_traces.py" "$data/device_info"

	local sed_rounds=()
	if [[ -n $rounds ]]; then
		sed_rounds=(-e "s/^\(    - rounds: \)[0-9]*/\1$rounds/")
	fi
	sed -e "s#/FedScale/benchmark/dataset/data#$data#g" \
		-e "s#^\(    - log_path: \)/FedScale/benchmark#\1$ref/runs/fedscale#" \
		-e 's/^\(    - local_steps: \)5\b/\120/' \
		"${sed_rounds[@]}" \
		"$root/runtime/jobtest/testdata/fedscale/femnist_k8s.yml" >"$job"
	grep -q "local_steps: 20" "$job"
	grep -q "log_path: $ref/runs/fedscale" "$job"
}

now() { date +%s.%N; }

# timed NAME CMD...: start CMD in the background under /usr/bin/time -v.
timed() {
	local name=$1
	shift
	/usr/bin/time -v -o "$run/$name.time" "$@" >"$run/$name.out" 2>&1 &
	pids+=($!)
}

finish() {
	local start=$1 end
	wait "${pids[0]}"
	end=$(now)
	wait "${pids[@]:1}"
	# Anything else running would skew the times: keep the load averages.
	echo "end:   $(cat /proc/loadavg)" >>"$run/loadavg"
	# Whole-machine CPU ticks over the run (user nice system idle ...), to
	# compare with the processes' own user+sys times in *.time.
	head -n 1 /proc/stat >>"$run/proc_stat"
	awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' >"$run/wall_s"
	echo "$(basename "$run"): wall $(cat "$run/wall_s") s"
	grep -H "Maximum resident" "$run"/*.time
}

run_fedscale() {
	run=$ref/runs/fedscale
	rm -rf "$run"
	mkdir -p "$run"
	local flags=()
	mapfile -t flags < <("$py" - "$job" <<'EOF'
import sys, yaml
conf = yaml.safe_load(open(sys.argv[1]))
job_conf = {"time_stamp": "ref", "ps_ip": "127.0.0.1"}
for entry in conf["job_conf"]:
    job_conf.update(entry)
for k, v in job_conf.items():
    print(f"--{k}")
    print(v)
EOF
	)
	flags+=(--ps_port "$fs_port")
	export PYTHONPATH=$here/stubs:$src
	# Bytecode caches (if the caller allows them) go to build/, not stubs/.
	export PYTHONPYCACHEPREFIX=$ref/pycache
	local start
	pids=()
	echo "start: $(cat /proc/loadavg)" >"$run/loadavg"
	head -n 1 /proc/stat >"$run/proc_stat"
	start=$(now)
	timed aggregator "$py" "$src/fedscale/cloud/aggregation/aggregator.py" "${flags[@]}" \
		--this_rank=0 --num_executors=2 "--executor_configs=localhost:[2]"
	for rank in 1 2; do
		timed "executor$rank" "$py" "$src/fedscale/cloud/execution/executor.py" "${flags[@]}" \
			"--this_rank=$rank" --num_executors=2 --cuda_device=cuda:0
	done
	finish "$start"
	unset PYTHONPATH PYTHONPYCACHEPREFIX
	grep -h "FL Testing" "$run"/logs/*/*/aggregator/log || true
}

run_ours() {
	run=$ref/runs/ours
	rm -rf "$run"
	mkdir -p "$run"
	local common=(--config "$job" --ps-ip 127.0.0.1 --ps-port "$our_port" --http-port 0)
	local start
	pids=()
	echo "start: $(cat /proc/loadavg)" >"$run/loadavg"
	head -n 1 /proc/stat >"$run/proc_stat"
	start=$(now)
	timed aggregator "$bin/aggregator" "${common[@]}" --time-stamp ref --log-path "$run" --no-resume
	for rank in 1 2; do
		timed "executor$rank" "$bin/executor" "${common[@]}" --rank "$rank" --log-path "$run"
	done
	finish "$start"
	grep -h '"top_1"' "$run"/logs/*/ref/metrics.jsonl || true
}

prepare
if [[ $which != ours ]]; then run_fedscale; fi
if [[ $which != fedscale ]]; then run_ours; fi
