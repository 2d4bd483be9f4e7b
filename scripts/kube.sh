#!/usr/bin/env bash
# scripts/kube.sh start|stop|status|kubeconfig — a real Kubernetes control
# plane for tests, on loopback, with fake (kwok) nodes instead of kubelets.
#
#   KUBECONFIG=$(scripts/kube.sh start)   # builds binaries if needed, waits until ready
#   go test ./...                          # tests read $KUBECONFIG
#   scripts/kube.sh stop                   # kills the daemons, wipes etcd
#
# What runs (all built from Go modules by scripts/tools.sh, cached by version;
# no container image is involved):
#   etcd v3.7.0                    127.0.0.1:23791 (client), :23801 (peer)
#   kube-apiserver v1.37.2         https://127.0.0.1:16443, token auth, RBAC,
#                                  ServiceAccount admission on
#   kube-controller-manager        all default controllers (job, garbage
#                                  collector, serviceaccount, namespace, ...)
#   kube-scheduler                 the default scheduler
#   kwok v0.8.0                    drives the fake nodes and their pods: pods
#                                  bound to a kwok node become Running with a
#                                  pod IP at once and STAY Running (no
#                                  pod-complete stage); deleted pods go away.
# Fake nodes (annotation kwok.x-k8s.io/node=fake, label type=kwok):
#   kwok-gpu-0..3  cpu 64, memory 256Gi, pods 250, nvidia.com/gpu 8, label
#                  nvidia.com/gpu.present=true, taint nvidia.com/gpu=present:NoSchedule
#   kwok-cpu-0..1  cpu 64, memory 256Gi, pods 250, no taint
#
# start prints the kubeconfig path as its last stdout line (progress goes to
# stderr). The kubeconfig trusts the cluster's own CA and authenticates with
# a static admin token (group system:masters). Idempotent: a healthy cluster
# is reused as is; a partly dead one is stopped and started afresh (empty).
#
# State (pki, tokens, kubeconfig, etcd data, *.log, *.pid) lives in one folder:
#   FEDSCALE_KUBE_STATE    default /tmp/fedscale-kube
# Ports (fixed, loopback only; start refuses if one is taken by something else):
#   FEDSCALE_KUBE_API_PORT (16443) FEDSCALE_KUBE_ETCD_PORT (23791)
#   FEDSCALE_KUBE_ETCD_PEER_PORT (23801) FEDSCALE_KUBE_KCM_PORT (16257)
#   FEDSCALE_KUBE_SCHEDULER_PORT (16259)
# Binaries: FEDSCALE_TOOLS_CACHE, see scripts/tools.sh (cold build ~10+ min).
# Needs curl and openssl; no root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${FEDSCALE_KUBE_STATE:-/tmp/fedscale-kube}
API_PORT=${FEDSCALE_KUBE_API_PORT:-16443}
ETCD_PORT=${FEDSCALE_KUBE_ETCD_PORT:-23791}
ETCD_PEER_PORT=${FEDSCALE_KUBE_ETCD_PEER_PORT:-23801}
KCM_PORT=${FEDSCALE_KUBE_KCM_PORT:-16257}
SCHED_PORT=${FEDSCALE_KUBE_SCHEDULER_PORT:-16259}
PKI=$STATE/pki
KUBECONFIG_FILE=$STATE/kubeconfig
ETCD_DATA=$STATE/etcd
KWOK_CONFIG=$STATE/kwok.yaml
SERVER=https://127.0.0.1:$API_PORT
START_TIMEOUT=${FEDSCALE_KUBE_START_TIMEOUT:-90} # seconds, once binaries exist

# Start order; stop goes in reverse.
DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

die() {
	echo "kube.sh: $*" >&2
	exit 1
}
log() { echo "kube.sh: $*" >&2; }

pidfile() { echo "$STATE/$1.pid"; }
logfile() { echo "$STATE/$1.log"; }

# running_pid NAME: pid of our running daemon NAME, or nothing. Checks the
# command line too (the binary's name, and a path inside $STATE that each of
# our daemons is given), so a stale pid file whose pid was reused by another
# process does not count as running.
running_pid() {
	local pid f cmd
	f=$(pidfile "$1")
	[ -f "$f" ] || return 1
	pid=$(cat "$f" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[ -r "/proc/$pid/cmdline" ] || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline") || return 1
	case ${cmd%% *} in */"$1" | "$1") ;; *) return 1 ;; esac
	case $cmd in *" --"*"=$STATE/"*) ;; *) return 1 ;; esac
	echo "$pid"
}

# alive PID: the process exists and is not a zombie. Our daemons are
# reparented to PID 1 once start's shell exits, and PID 1 may take a while to
# reap them; a zombie has exited, whatever kill -0 says.
alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) } # the fields after "pid (comm) "; the first is the state
	[ "${s%% *}" != Z ]
}

tail_log() {
	local f
	f=$(logfile "$1")
	echo "---- last lines of $f ----" >&2
	tail -n 40 "$f" >&2 2>/dev/null || true
}

# lock: serialise start/stop on one state folder (the first start may be
# building the binaries: minutes, cold).
lock() {
	mkdir -p "$STATE"
	exec {LOCKFD}>"$STATE/.lock"
	flock -w 1800 "$LOCKFD" || die "timed out waiting for $STATE/.lock"
}

# api CURL-ARGS... PATH: a request to the apiserver as the admin user.
# --noproxy: never send loopback traffic through an HTTP(S)_PROXY.
api() {
	curl -sS --noproxy '*' --max-time 10 --cacert "$PKI/ca.crt" \
		-H "Authorization: Bearer $(cat "$PKI/admin.token")" "${@:1:$#-1}" "$SERVER${*: -1}"
}

# port_busy PORT: something listens on 127.0.0.1:PORT (or on all addresses).
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# make_pki: a CA, the apiserver's serving certificate, the service-account
# key pair and the admin token. Made once and kept across stop/start, so a
# kubeconfig read by a test stays valid.
make_pki() {
	[ -s "$PKI/admin.token" ] && [ -s "$PKI/apiserver.crt" ] && [ -s "$PKI/sa.pub" ] && return 0
	command -v openssl >/dev/null 2>&1 || die "openssl not found"
	log "making a CA, serving certificate, service-account keys and admin token in $PKI"
	rm -rf "$PKI"
	mkdir -p "$PKI"
	chmod 700 "$PKI"
	(
		cd "$PKI"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout ca.key -out ca.crt -days 3650 -subj "/CN=fedscale-kube-ca" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
		printf '%s\n' \
			"basicConstraints=CA:FALSE" \
			"keyUsage=critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage=serverAuth" \
			"subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
			>apiserver.ext
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-out apiserver.crt -days 3650 -extfile apiserver.ext
		openssl genrsa -out sa.key 2048
		openssl rsa -in sa.key -pubout -out sa.pub
		rm -f apiserver.csr apiserver.ext ca.srl
		# token,user,uid,"groups": the one user every client (tests, the
		# controller manager, the scheduler, kwok) authenticates as.
		openssl rand -hex 32 >admin.token.new
		printf '%s,admin,admin,"system:masters"\n' "$(cat admin.token.new)" >tokens.csv
		mv admin.token.new admin.token
		chmod 600 ./*.key admin.token tokens.csv
	) >/dev/null 2>"$STATE/openssl.log" || {
		cat "$STATE/openssl.log" >&2
		die "could not make the pki with openssl"
	}
}

write_kubeconfig() {
	local tmp=$KUBECONFIG_FILE.tmp
	(
		umask 077
		cat >"$tmp" <<EOF
# Generated by scripts/kube.sh; edit the script, not this file.
apiVersion: v1
kind: Config
clusters:
- name: fedscale-kube
  cluster:
    server: $SERVER
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: admin
  user:
    token: $(cat "$PKI/admin.token")
contexts:
- name: fedscale-kube
  context:
    cluster: fedscale-kube
    user: admin
    namespace: default
current-context: fedscale-kube
EOF
	)
	mv -f "$tmp" "$KUBECONFIG_FILE"
}

# write_kwok_config: the Stages kwok plays, from tools/kwok/stages (verbatim
# copies of the pinned kwok module's node-initialize, node-heartbeat-with-lease,
# pod-ready and pod-delete stages). No pod-complete: pods of a Job must stay
# Running.
write_kwok_config() {
	local f first=1
	{
		echo "# Generated by scripts/kube.sh from tools/kwok/stages; edit those, not this file."
		for f in node-initialize node-heartbeat-with-lease pod-ready pod-delete; do
			[ -f "$ROOT/tools/kwok/stages/$f.yaml" ] || die "missing tools/kwok/stages/$f.yaml"
			[ "$first" = 1 ] || echo "---"
			first=0
			cat "$ROOT/tools/kwok/stages/$f.yaml"
		done
	} >"$KWOK_CONFIG"
}

# find_bins: sets BIN[name] for every daemon, building what is missing.
declare -A BIN=()
find_bins() {
	local dirs d n
	dirs=$("$ROOT/scripts/tools.sh" "${DAEMONS[@]}") || die "could not build ${DAEMONS[*]} (scripts/tools.sh)"
	for n in "${DAEMONS[@]}"; do
		for d in $dirs; do
			if [ -x "$d/$n" ]; then
				BIN[$n]=$d/$n
				break
			fi
		done
		[ -n "${BIN[$n]:-}" ] || die "scripts/tools.sh built no $n"
	done
}

# launch NAME ARGS...: start a daemon in its own session (a Ctrl-C aimed at
# the caller's terminal does not take it down), stdin from /dev/null, its
# output appended to $STATE/NAME.log, without the start/stop lock fd.
launch() {
	local name=$1
	shift
	echo "==== $(date -u +%FT%TZ) start" >>"$(logfile "$name")"
	setsid "${BIN[$name]}" "$@" </dev/null >>"$(logfile "$name")" 2>&1 {LOCKFD}>&- &
	echo "$!" >"$(pidfile "$name")"
}

start_etcd() {
	mkdir -p "$ETCD_DATA"
	chmod 700 "$ETCD_DATA"
	# --unsafe-no-fsync: a throwaway test cluster; fsync would make every
	# write wait for the disk.
	launch etcd --name=default --data-dir="$ETCD_DATA" \
		--listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
		--advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster="default=http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster-state=new --unsafe-no-fsync --log-level=warn
}

start_apiserver() {
	# --endpoint-reconciler-type=none: the advertised address is loopback,
	# which an Endpoints object may not hold (the kubernetes Service then has
	# no endpoints; nothing in this cluster runs in a pod to use it).
	launch kube-apiserver \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
		--token-auth-file="$PKI/tokens.csv" \
		--authorization-mode=Node,RBAC \
		--service-account-key-file="$PKI/sa.pub" \
		--service-account-signing-key-file="$PKI/sa.key" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-cluster-ip-range=10.96.0.0/16 \
		--endpoint-reconciler-type=none \
		--allow-privileged=true \
		--profiling=false
}

start_controller_manager() {
	# --use-service-account-credentials=false: every controller acts as the
	# admin user. QPS raised from 20/30 so Jobs of many pods start quickly.
	launch kube-controller-manager \
		--kubeconfig="$KUBECONFIG_FILE" \
		--authentication-kubeconfig="$KUBECONFIG_FILE" \
		--authorization-kubeconfig="$KUBECONFIG_FILE" \
		--bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
		--service-account-private-key-file="$PKI/sa.key" \
		--root-ca-file="$PKI/ca.crt" \
		--use-service-account-credentials=false \
		--leader-elect=false \
		--controllers='*' \
		--service-cluster-ip-range=10.96.0.0/16 \
		--kube-api-qps=200 --kube-api-burst=400 \
		--profiling=false
}

start_scheduler() {
	launch kube-scheduler \
		--kubeconfig="$KUBECONFIG_FILE" \
		--authentication-kubeconfig="$KUBECONFIG_FILE" \
		--authorization-kubeconfig="$KUBECONFIG_FILE" \
		--bind-address=127.0.0.1 --secure-port="$SCHED_PORT" \
		--leader-elect=false \
		--profiling=false
}

start_kwok() {
	# KWOK_WORKDIR: kwok would also load ~/.kwok/kwok.yaml if it exists (and
	# with it, maybe a pod-complete stage); keep it to our own config.
	# --node-lease-duration-seconds: kwok renews each node's Lease (every
	# 10 s) like a kubelet; without it (the flag defaults to 0) the node
	# lifecycle controller finds no heartbeat after its 50 s grace period,
	# marks every node NotReady/unreachable and taints them.
	mkdir -p "$STATE/kwok"
	KWOK_WORKDIR=$STATE/kwok launch kwok \
		--kubeconfig="$KUBECONFIG_FILE" \
		--config="$KWOK_CONFIG" \
		--manage-all-nodes=false \
		--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
		--node-lease-duration-seconds=40 \
		--cidr=10.244.0.0/16 \
		--node-ip=127.0.0.1
}

# node_json NAME INDEX GPU: a fake node. Status (capacity, allocatable) is
# kept on create; kwok's node-initialize stage then marks it Ready. Each node
# gets its own pod CIDR, from which kwok hands out pod IPs.
node_json() {
	local name=$1 idx=$2 gpu=$3 labels taints="" res='"cpu":"64","memory":"256Gi","pods":"250"'
	labels='"type":"kwok","kubernetes.io/hostname":"'$name'","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64"'
	if [ "$gpu" = 1 ]; then
		labels+=',"nvidia.com/gpu.present":"true"'
		taints='"taints":[{"key":"nvidia.com/gpu","value":"present","effect":"NoSchedule"}],'
		res+=',"nvidia.com/gpu":"8"'
	fi
	printf '{"apiVersion":"v1","kind":"Node","metadata":{"name":"%s","annotations":{"kwok.x-k8s.io/node":"fake"},"labels":{%s}},"spec":{%s"podCIDR":"10.244.%d.0/24","podCIDRs":["10.244.%d.0/24"]},"status":{"capacity":{%s},"allocatable":{%s}}}' \
		"$name" "$labels" "$taints" "$idx" "$idx" "$res" "$res"
}

NODES=(kwok-gpu-0 kwok-gpu-1 kwok-gpu-2 kwok-gpu-3 kwok-cpu-0 kwok-cpu-1)

create_nodes() {
	local i name gpu code
	for i in "${!NODES[@]}"; do
		name=${NODES[$i]}
		case $name in kwok-gpu-*) gpu=1 ;; *) gpu=0 ;; esac
		code=$(api -o "$STATE/node-create.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
			--data "$(node_json "$name" "$i" "$gpu")" /api/v1/nodes) || code=000
		case $code in
		201 | 409) ;; # 409: already there
		*)
			cat "$STATE/node-create.out" >&2 2>/dev/null || true
			return 1
			;;
		esac
	done
	rm -f "$STATE/node-create.out"
}

# Readiness probes: each succeeds (status 0) once its part works.
etcd_ready() { curl -sf --noproxy '*' --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }
api_ready() { [ "$(api --max-time 2 /readyz 2>/dev/null)" = ok ]; }
healthz() { [ "$(curl -sk --noproxy '*' --max-time 2 "https://127.0.0.1:$1/healthz" 2>/dev/null)" = ok ]; }
kcm_ready() { healthz "$KCM_PORT"; }
sched_ready() { healthz "$SCHED_PORT"; }
# The default ServiceAccount exists: the controller manager's serviceaccount
# controller works (pods are refused by admission until it does).
sa_ready() { api -f -o /dev/null --max-time 2 /api/v1/namespaces/default/serviceaccounts/default 2>/dev/null; }
# All our nodes report Ready=True and no longer carry the not-ready taint
# that admission puts on new nodes (the controller manager's node lifecycle
# controller lifts it; until then the scheduler would skip them). The
# apiserver writes a condition's fields in struct order (type, status, ...),
# so, blanks removed (it indents JSON for curl), the pair is adjacent.
nodes_ready() {
	local out n
	out=$(api --max-time 2 '/api/v1/nodes?labelSelector=type%3Dkwok' 2>/dev/null | tr -d '[:space:]') || return 1
	n=$(grep -o '"type":"Ready","status":"True"' <<<"$out" | wc -l)
	[ "$n" -ge "${#NODES[@]}" ] && ! grep -q 'node.kubernetes.io/not-ready' <<<"$out"
}

# wait_for WHAT PROBE LOGNAME: poll PROBE every 100 ms until it succeeds; fail
# (tail LOGNAME's log, stop everything) when a daemon dies or time runs out.
wait_for() {
	local what=$1 probe=$2 logname=$3 d pid
	while ! "$probe"; do
		for d in "${DAEMONS[@]}"; do
			[ -f "$(pidfile "$d")" ] || continue
			if ! pid=$(running_pid "$d") || ! alive "$pid"; then
				tail_log "$d"
				cmd_stop >/dev/null 2>&1 || true
				die "$d exited during start-up (waiting for $what)"
			fi
		done
		if [ "$SECONDS" -ge "$DEADLINE" ]; then
			tail_log "$logname"
			cmd_stop >/dev/null 2>&1 || true
			die "$what not ready after ${START_TIMEOUT}s"
		fi
		sleep 0.1
	done
}

# healthy: every daemon runs and the cluster answers.
healthy() {
	local d
	for d in "${DAEMONS[@]}"; do running_pid "$d" >/dev/null || return 1; done
	[ -s "$KUBECONFIG_FILE" ] && api_ready && kcm_ready && sched_ready
}

cmd_start() {
	lock
	if healthy; then
		echo "$KUBECONFIG_FILE" # idempotent: already up
		return 0
	fi
	local d any=0
	for d in "${DAEMONS[@]}"; do
		[ -f "$(pidfile "$d")" ] && any=1
	done
	if [ "$any" = 1 ]; then
		log "found a partly running or unhealthy cluster; stopping it and starting afresh"
		cmd_stop
	fi
	command -v curl >/dev/null 2>&1 || die "curl not found"
	find_bins
	local p
	for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$KCM_PORT" "$SCHED_PORT"; do
		port_busy "$p" && die "port $p on 127.0.0.1 is in use by another process (see the FEDSCALE_KUBE_*_PORT variables)"
	done
	make_pki
	write_kubeconfig
	write_kwok_config
	rm -rf "$ETCD_DATA" # a clean cluster on every fresh start

	local t0=$SECONDS
	DEADLINE=$((SECONDS + START_TIMEOUT))
	log "starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (state in $STATE)"
	start_etcd
	wait_for etcd etcd_ready etcd
	start_apiserver
	wait_for kube-apiserver api_ready kube-apiserver
	start_controller_manager
	start_scheduler
	start_kwok
	create_nodes || {
		tail_log kube-apiserver
		cmd_stop >/dev/null 2>&1 || true
		die "could not create the kwok nodes"
	}
	wait_for "the default ServiceAccount" sa_ready kube-controller-manager
	wait_for "the kwok nodes" nodes_ready kwok
	wait_for kube-controller-manager kcm_ready kube-controller-manager
	wait_for kube-scheduler sched_ready kube-scheduler
	log "ready in $((SECONDS - t0)) s: $SERVER, ${#NODES[@]} kwok nodes"
	echo "$KUBECONFIG_FILE"
}

cmd_stop() {
	[ -d "$STATE" ] || return 0
	[ -n "${LOCKFD:-}" ] || lock # start's failure paths call us with the lock held
	local i d pid
	for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
		d=${DAEMONS[$i]}
		if pid=$(running_pid "$d"); then
			kill -TERM "$pid" 2>/dev/null || true
			# Graceful shutdown takes well under a second; give it 10 s, then KILL.
			local j
			for ((j = 0; j < 100; j++)); do
				alive "$pid" || break
				sleep 0.1
			done
			if alive "$pid"; then
				kill -KILL "$pid" 2>/dev/null || true
				for ((j = 0; j < 50; j++)); do
					alive "$pid" || break
					sleep 0.1
				done
			fi
			alive "$pid" && die "$d (pid $pid) did not exit"
		fi
		rm -f "$(pidfile "$d")"
	done
	# The next start begins with an empty cluster. pki and the kubeconfig
	# stay: a path handed to a test keeps working after a restart.
	rm -rf "$ETCD_DATA"
}

cmd_status() {
	local d pid down=0
	for d in "${DAEMONS[@]}"; do
		if pid=$(running_pid "$d"); then
			echo "$d running (pid $pid)"
		else
			echo "$d not running"
			down=1
		fi
	done
	if [ "$down" = 0 ] && api_ready; then
		echo "kube-apiserver ready at $SERVER; kubeconfig $KUBECONFIG_FILE"
		return 0
	fi
	return 1
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
kubeconfig) echo "$KUBECONFIG_FILE" ;;
*)
	echo "usage: $0 start|stop|status|kubeconfig" >&2
	exit 2
	;;
esac
