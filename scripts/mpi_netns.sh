#!/usr/bin/env bash
# Simulates two machines on one Linux host and trains the example RetinaNet data-parallel across them,
# so that the gradient allreduce goes over a (optionally rate-limited) network link.
#
# The "machines": two network namespaces, focal-rank0 and focal-rank1, each also given its own UTS
# namespace (hostname focal-rank0 / focal-rank1, so Open MPI sees two nodes). The "cable": a veth pair,
# focal-v0 = 10.199.0.1/24 in focal-rank0 and focal-v1 = 10.199.0.2/24 in focal-rank1. With --rate,
# tc shapes both ends (each direction; tbf, netem as a fallback), e.g. --rate 10gbit for 10 Gb/s.
#
# The launch is the one of a real two-node cluster: mpirun runs inside focal-rank0 with a hostfile
# naming 10.199.0.1 and 10.199.0.2, and starts the second node's orted through this script acting as
# its ssh (plm_rsh_agent; the internal `--rsh-agent HOST COMMAND...` mode enters focal-rank1 instead
# of logging in). Each rank then talks PMIx to the orted / mpirun of its own "machine", and Open MPI
# moves data between the ranks with TCP only (pml ob1, btl tcp,self, btl_tcp_if_include and
# oob_tcp_if_include 10.199.0.0/24: no shared memory, no UCX). Ranks are not bound to cores (both
# "machines" would bind their rank to core 0 of this host otherwise).
# Why not an MPMD `mpirun -np 1 ip netns exec focal-rank0 TRAIN : -np 1 ip netns exec focal-rank1
# TRAIN` from the host's namespace: PMIx 4 (Debian 12's libpmix2 4.2) serves its clients over TCP on
# 127.0.0.1, not over a Unix socket, and a process in another network namespace has its own loopback,
# so MPI_Init fails ("OPAL ERROR: Unreachable in file ext3x_client.c").
#
# The veth's byte counters are read before and after the run to check that the ranks' traffic went
# over it; the summary gives rank 0's img/s and the bytes moved per training step (both directions,
# Ethernet/IP/TCP headers and Open MPI's small control traffic included). Both ranks still share this
# host's cores and kernel, so it simulates the network, not the machines' compute.
#
# Usage (as root: it needs CAP_NET_ADMIN for the namespaces):
#   scripts/mpi_netns.sh                                  300 iterations, demo config, batch 8, no rate limit
#   scripts/mpi_netns.sh --iterations 60 --rate 10gbit    the link limited to 10 Gb/s each way
#   scripts/mpi_netns.sh --build DIR --config NAME --batch B --output DIR -- --lr 0.03 --seed 2
# Options:
#   --build DIR       build folder holding examples/retinanet/retinanet_train (default build)
#   --iterations N    training iterations (default 300)
#   --rate R          limit the link, in tc's units: 100mbit, 1gbit, 10gbit, 125mbps... (default: no limit)
#   --config NAME     trainer config (default demo)
#   --batch B         images per step over both ranks (default 8)
#   --output DIR      the trainer's output folder, also gets mpi_netns.log (default: a new mktemp -d
#                     folder under /tmp, kept)
#   -- ARGS...        further trainer arguments; they come after the defaults, so they override them
# Trainer arguments: --config NAME --iterations N --batch B --eval-data none --log-every 50 --threads 1
#                    --output DIR, then ARGS.
#
# It installs iproute2 (ip, tc) with apt-get when `ip` or `tc` is missing, always removes the
# namespaces (and with them the veth pair) on exit, and runs one instance at a time (flock).
# Exit status: 0 on success; 77 (skipped) when this machine cannot create network namespaces or veth
# links, or shape them with --rate (not root, no CAP_NET_ADMIN: e.g. an unprivileged container);
# 1 on other errors, a failed training run included.
set -euo pipefail

ns0=focal-rank0 ns1=focal-rank1
veth0=focal-v0 veth1=focal-v1
addr0=10.199.0.1 addr1=10.199.0.2 subnet=10.199.0.0/24

# Internal: Open MPI's rsh/ssh agent. ORTE calls `AGENT HOST orted ARGS...`, the arguments quoted
# for a remote shell as ssh would run them; enter HOST's namespaces instead, with a clean
# environment as an ssh login would have.
if [[ ${1:-} == --rsh-agent ]]; then
  case ${2:-} in
    "$addr0") ns=$ns0 ;;
    "$addr1") ns=$ns1 ;;
    *) echo "mpi_netns --rsh-agent: unknown host '${2:-}'" >&2; exit 1 ;;
  esac
  shift 2
  exec env -i PATH="$PATH" HOME="${HOME:-/root}" ${LD_LIBRARY_PATH:+LD_LIBRARY_PATH="$LD_LIBRARY_PATH"} \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    ip netns exec "$ns" unshare --uts sh -c "echo $ns > /proc/sys/kernel/hostname && $*"
fi

cd "$(dirname "$0")/.."
self=$(realpath "$0")

build=build iterations=300 rate="" config=demo batch=8 output=""
extra=()

die() { echo "mpi_netns: error: $*" >&2; exit 1; }
skip() { echo "mpi_netns: skipped: $*" >&2; exit 77; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$self"; }

while (($#)); do
  case $1 in
    --build|--iterations|--rate|--config|--batch|--output)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --build) build=$2 ;; --iterations) iterations=$2 ;; --rate) rate=$2 ;;
        --config) config=$2 ;; --batch) batch=$2 ;; --output) output=$2 ;;
      esac
      shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ $iterations =~ ^[1-9][0-9]*$ ]] || die "--iterations wants a positive integer, not '$iterations'"
[[ $batch =~ ^[1-9][0-9]*$ ]] || die "--batch wants a positive integer, not '$batch'"
[[ $self != *[[:space:]]* ]] || die "this script's path has a space: Open MPI cannot use it as its rsh agent"

# --- preconditions ------------------------------------------------------------------------------
((EUID == 0)) || skip "must run as root: creating network namespaces and veth links needs CAP_NET_ADMIN"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

if ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
  command -v apt-get >/dev/null || die "'ip' or 'tc' is missing and there is no apt-get: install iproute2"
  echo "mpi_netns: installing iproute2 (ip, tc) with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; } ||
    die "could not install iproute2 with apt-get"
fi
ip_bin=$(command -v ip)
"$ip_bin" -V 2>&1 | grep -q iproute2 || die "$ip_bin is not iproute2's ip (busybox?): install iproute2"
[[ -z $rate ]] || command -v tc >/dev/null || die "--rate needs tc (iproute2)"
command -v unshare >/dev/null || die "unshare (util-linux) not found"
command -v flock >/dev/null || die "flock (util-linux) not found"
if ! command -v mpirun >/dev/null || ! command -v orted >/dev/null; then
  die "mpirun / orted not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)"
fi
mpirun --version 2>/dev/null | grep -q 'Open MPI' || die "mpirun is not Open MPI's (this script uses its orted and MCA options)"
train=$(realpath -m "$build/examples/retinanet/retinanet_train")
[[ -x $train ]] || die "$train is not built: cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DFOCAL_BUILD_EXAMPLES=ON && cmake --build $build --target retinanet_train"

# A tc rate (bit, kbit, mbit, gbit, tbit or bps, kbps, ..., a bare number being bit/s) in bytes/s.
rate_bytes() {
  local r=${1,,}
  [[ $r =~ ^([0-9]+(\.[0-9]+)?)([kmgt]?)(bit|bps)?$ ]] || return 1
  awk -v n="${BASH_REMATCH[1]}" -v p="${BASH_REMATCH[3]}" -v u="${BASH_REMATCH[4]}" 'BEGIN {
    m = (p == "k") ? 1e3 : (p == "m") ? 1e6 : (p == "g") ? 1e9 : (p == "t") ? 1e12 : 1
    printf "%.0f\n", n * m / (u == "bps" ? 1 : 8) }'
}
if [[ -n $rate ]]; then
  rate_Bps=$(rate_bytes "$rate") || die "--rate '$rate' is not a tc rate such as 100mbit, 1gbit or 10gbit"
  ((rate_Bps > 0)) || die "--rate must be above 0"
fi

# --- one instance at a time; clean up whatever happens --------------------------------------------
lock_dir=/run/lock; [[ -d $lock_dir && -w $lock_dir ]] || lock_dir=/tmp
exec 9>"$lock_dir/focal-mpi-netns.lock"
flock -n 9 || die "another scripts/mpi_netns.sh is running (lock $lock_dir/focal-mpi-netns.lock)"

work="" mpirun_pid=""
cleanup() {
  local rc=$?
  if [[ -n $mpirun_pid ]] && kill -0 "$mpirun_pid" 2>/dev/null; then
    echo "mpi_netns: stopping mpirun" >&2
    kill -TERM "$mpirun_pid" 2>/dev/null || true  # it stops its ranks and the other node's orted
    wait "$mpirun_pid" 2>/dev/null || true
  fi
  # Deleting the namespaces deletes the veth pair inside them; the host-side name is only there if
  # we stopped between creating the pair and moving it.
  "$ip_bin" netns del "$ns0" 2>/dev/null || true
  "$ip_bin" netns del "$ns1" 2>/dev/null || true
  "$ip_bin" link del "$veth0" 2>/dev/null || true
  [[ -z $work ]] || rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of a run that was killed (we hold the lock, so no other run owns them).
for ns in "$ns0" "$ns1"; do
  if [[ -e /run/netns/$ns ]] || "$ip_bin" netns list | grep -qw "$ns"; then
    echo "mpi_netns: removing the stale namespace $ns"
    "$ip_bin" netns del "$ns"
  fi
done
"$ip_bin" link del "$veth0" 2>/dev/null || true

# --- the two "machines" and the cable ----------------------------------------------------------------
if ! err=$("$ip_bin" netns add "$ns0" 2>&1); then
  skip "this machine cannot create network namespaces (ip netns add: ${err:-failed}); it needs CAP_NET_ADMIN and namespace support (e.g. a --privileged container)"
fi
"$ip_bin" netns add "$ns1"
if ! err=$("$ip_bin" link add "$veth0" type veth peer name "$veth1" 2>&1); then
  skip "this machine cannot create a veth pair (ip link add ... type veth: ${err:-failed}); it needs CAP_NET_ADMIN"
fi
"$ip_bin" link set "$veth0" netns "$ns0"
"$ip_bin" link set "$veth1" netns "$ns1"
"$ip_bin" -n "$ns0" addr add "$addr0/24" dev "$veth0"
"$ip_bin" -n "$ns1" addr add "$addr1/24" dev "$veth1"
for pair in "$ns0 $veth0" "$ns1 $veth1"; do
  read -r ns dev <<<"$pair"
  "$ip_bin" -n "$ns" link set lo up
  "$ip_bin" -n "$ns" link set "$dev" up
done
if ! "$ip_bin" netns exec "$ns0" unshare --uts true 2>/dev/null; then
  skip "this machine cannot create UTS namespaces (unshare --uts)"
fi
if command -v ping >/dev/null; then
  ping_ok() { "$ip_bin" netns exec "$ns0" ping -c 1 -W 2 "$addr1" >/dev/null 2>&1; }
  ping_ok || { sleep 1; ping_ok; } || die "$ns0 cannot ping $addr1 over the veth"
fi

# Shape both ends (each direction of the cable) to --rate. tbf's bucket holds ~5 ms at the rate, at
# least 256 KiB so that the veth's 64 KiB GSO packets pass; its queue holds 50 ms.
if [[ -n $rate ]]; then
  burst=$(((rate_Bps / 200) > 262144 ? (rate_Bps / 200) : 262144))
  for pair in "$ns0 $veth0" "$ns1 $veth1"; do
    read -r ns dev <<<"$pair"
    if ! err=$("$ip_bin" netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$rate" burst "$burst" latency 50ms 2>&1); then
      echo "mpi_netns: tc tbf failed ($err); trying netem rate"
      err=$("$ip_bin" netns exec "$ns" tc qdisc add dev "$dev" root netem rate "$rate" limit 100000 2>&1) ||
        skip "this machine cannot shape the link with tc (tbf or netem: $err); run without --rate"
    fi
  done
  echo "mpi_netns: link limited to $rate each way: $("$ip_bin" netns exec "$ns0" tc qdisc show dev "$veth0" | head -1)"
fi

# --- run ------------------------------------------------------------------------------------------
if [[ -z $output ]]; then
  output=$(mktemp -d /tmp/focal-mpi-netns.XXXXXX)
fi
mkdir -p "$output"
output=$(realpath "$output")
log=$output/mpi_netns.log
work=$(mktemp -d /tmp/focal-mpi-netns-work.XXXXXX)
printf '%s slots=1\n%s slots=1\n' "$addr0" "$addr1" >"$work/hostfile"

counters() {  # "<tx bytes> <rx bytes>" of veth $2 in namespace $1
  "$ip_bin" netns exec "$1" cat "/sys/class/net/$2/statistics/tx_bytes" "/sys/class/net/$2/statistics/rx_bytes" |
    tr '\n' ' '
}
args=(--config "$config" --iterations "$iterations" --batch "$batch" --eval-data none --log-every 50
      --threads 1 --output "$output" "${extra[@]}")
# TCP on 10.199.0.0/24 only, between the ranks (btl) and between mpirun and the second node's orted
# (oob): pml ob1 rather than UCX (which would use shared memory), no vader (shared-memory) BTL; the
# coll/sm and osc/ucx,sm components are excluded for good measure.
mca=(--mca plm_rsh_agent "$self --rsh-agent" --mca oob_tcp_if_include "$subnet"
     --mca pml ob1 --mca btl 'tcp,self' --mca btl_tcp_if_include "$subnet"
     --mca coll '^sm' --mca osc '^ucx,sm')
# mpirun runs on "machine" 0: in focal-rank0, its hostname focal-rank0.
cmd=("$ip_bin" netns exec "$ns0" unshare --uts sh -c "echo $ns0 > /proc/sys/kernel/hostname && exec \"\$@\"" sh
     mpirun --hostfile "$work/hostfile" -np 2 --map-by node --bind-to none "${mca[@]}" "$train" "${args[@]}")

echo "mpi_netns: $ns0 ($addr0 on $veth0) <-> $ns1 ($addr1 on $veth1), rate ${rate:-unlimited}"
echo "mpi_netns: output $output"
echo "+ $(printf '%q ' "${cmd[@]}")"
read -r tx0_before rx0_before <<<"$(counters "$ns0" "$veth0")"
start=$(date +%s.%N)
# mpirun in the background and `wait`, so that a signal runs the traps (and stops it) at once.
exec 3> >(tee "$log")
tee_pid=$!
"${cmd[@]}" >&3 2>&3 &
mpirun_pid=$!
rc=0
wait "$mpirun_pid" || rc=$?
mpirun_pid=""
exec 3>&-
wait "$tee_pid" 2>/dev/null || true
end=$(date +%s.%N)
read -r tx0_after rx0_after <<<"$(counters "$ns0" "$veth0")"
((rc == 0)) || die "mpirun failed with status $rc (log: $log)"

# --- summary --------------------------------------------------------------------------------------
sent=$((tx0_after - tx0_before))      # rank 0 -> rank 1
received=$((rx0_after - rx0_before))  # rank 1 -> rank 0
total=$((sent + received))
# Rank 0's "trained N iterations in S s (X img/s)" and "gradient allreduce: X MB per step" lines.
summary=$(grep -E '^trained [0-9]+ iterations in' "$log" | tail -1 || true)
[[ -n $summary ]] || die "no 'trained N iterations' line from rank 0 (log: $log)"
img_s=$(sed -E 's/.*\(([0-9.]+) img\/s\).*/\1/' <<<"$summary")
steps=$(sed -E 's/^trained ([0-9]+) iterations.*/\1/' <<<"$summary")
grad_mb=$(grep -E '^gradient allreduce: [0-9.]+ MB per step' "$log" | tail -1 | sed -E 's/^gradient allreduce: ([0-9.]+) MB.*/\1/' || true)
grep -q "data parallel: 2 ranks" "$log" || die "the trainer did not run with 2 ranks (log: $log)"
# One allreduce of the gradients moves far more than this per step; less means TCP went some other way.
((total > 100000 * steps)) ||
  die "only $total bytes crossed $veth0 in $steps steps: the ranks' traffic did not go over the veth"
awk -v img="$img_s" -v steps="$steps" -v tx="$sent" -v rx="$received" -v t="$total" -v g="${grad_mb:-}" \
    -v wall="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" -v rate="${rate:-unlimited}" 'BEGIN {
  printf "mpi_netns: %d bytes (%.1f MB) crossed the veth in %d steps: rank 0 -> 1 %.2f MB/step, rank 1 -> 0 %.2f MB/step\n",
         t, t / 1e6, steps, tx / steps / 1e6, rx / steps / 1e6
  if (g != "")
    printf "mpi_netns: that is %.2fx the %s MB of gradients allreduced per step\n", t / steps / 1e6 / g, g
  printf "summary: rate %s, rank 0 %s img/s, %.0f bytes/step over the veth (%.2f MB), wall %s s\n",
         rate, img, t / steps, t / steps / 1e6, wall }'
