#!/usr/bin/env bash
# Data-parallel faults with the real retinanet_train under mpiexec (ctest: test_retinanet_mpi_faults):
#   1. ranks started with different arguments: a clear error on every rank and a non-zero exit;
#   2. one of 2 ranks killed with SIGKILL: the job ends within seconds, then resumes from the last
#      checkpoint on 1 rank (W = 2 -> 1) to the schedule's end;
#   3. a 1-rank run killed with SIGKILL resumes on 2 ranks (W = 1 -> 2) to the end.
#   tests/retinanet/test_mpi_faults.sh MPIEXEC RETINANET_TRAIN
set -euo pipefail
mpiexec=$1 train=$2
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
flags=()
"$mpiexec" --version 2>&1 | grep -q "Open MPI" && flags+=(--oversubscribe)
work=$(mktemp -d)
trap 'pkill -9 -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
total=300
common=(--config tiny --iterations $total --batch 4 --threads 1 --warmup 20 --eval-data none --checkpoint-every 5 --log-every 1000)

fail() { echo "FAILED: $*" >&2; exit 1; }

# The pid of the process of rank $2 whose command line names folder $1.
rank_pid() {
  local pid
  for pid in $(pgrep -f "retinanet_train.*$1" || true); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$pid"; return; }
  done
}

# Waits (at most 60 s) until folder $1 has a checkpoint.
wait_for_checkpoint() {
  for _ in $(seq 600); do [[ -f $1/checkpoint.npz ]] && return; sleep 0.1; done
  fail "no checkpoint in $1 after 60 s"
}

# Runs "$@" with a limit of $limit seconds; sets rc and seconds.
timed() {
  local start=$SECONDS
  rc=0
  timeout "$limit" "$@" >"$work/out" 2>"$work/err" || rc=$?
  seconds=$((SECONDS - start))
}

echo "== 1. different arguments on the two ranks"
limit=60 timed "$mpiexec" "${flags[@]}" -n 1 "$train" "${common[@]}" --output "$work/m" : -n 1 "$train" "${common[@]}" --batch 8 --output "$work/m"
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "mismatched ranks: exit $rc (124: hung)"
grep -q "rank 1's configuration and arguments must be the same as rank 0's.*'batch=8' where rank 0 has 'batch=4'" "$work/err" ||
  { cat "$work/err"; fail "rank 1 did not name the difference"; }
grep -q "(rank 0): .*another rank's differ" "$work/err" || { cat "$work/err"; fail "rank 0 did not report the mismatch"; }
echo "   every rank reported it, exit $rc in ${seconds} s"

echo "== 2. rank 1 of 2 killed with SIGKILL, resumed on 1 rank"
"$mpiexec" "${flags[@]}" -n 2 "$train" "${common[@]}" --output "$work/k2" >"$work/k2.log" 2>&1 &
launcher=$!
wait_for_checkpoint "$work/k2"
victim=$(rank_pid "$work/k2" 1)
[[ -n $victim ]] || fail "rank 1 not found (did the run end before the kill?)"
kill -9 "$victim"
start=$SECONDS
for _ in $(seq 300); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.1; done
kill -0 "$launcher" 2>/dev/null && fail "the job still runs 30 s after rank 1 was killed"
rc=0; wait "$launcher" || rc=$?
[[ $rc -ne 0 ]] || fail "the job exited 0 after rank 1 was killed"
echo "   the job ended $((SECONDS - start)) s after the kill (exit $rc)"
limit=120 timed "$train" "${common[@]}" --output "$work/k2" --resume
[[ $rc -eq 0 ]] || { cat "$work/err"; fail "resuming on 1 rank: exit $rc"; }
grep -Eq "resuming .* at iteration [1-9][0-9]* of $total" "$work/out" || { cat "$work/out"; fail "did not resume from the checkpoint"; }
grep -q "iter    $total/$total" "$work/out" || fail "the resumed run did not reach iteration $total"
echo "   $(grep -o 'resuming.*' "$work/out" | head -1); reached $total"

echo "== 3. a 1-rank run killed with SIGKILL, resumed on 2 ranks"
"$train" "${common[@]}" --output "$work/k1" >"$work/k1.log" 2>&1 &
single=$!
wait_for_checkpoint "$work/k1"
kill -9 "$single"
wait "$single" 2>/dev/null || true
limit=120 timed "$mpiexec" "${flags[@]}" -n 2 "$train" "${common[@]}" --output "$work/k1" --resume
[[ $rc -eq 0 ]] || { cat "$work/err"; fail "resuming on 2 ranks: exit $rc"; }
grep -Eq "resuming .* at iteration [1-9][0-9]* of $total" "$work/out" || { cat "$work/out"; fail "did not resume from the checkpoint"; }
grep -q "data parallel: 2 ranks" "$work/out" || fail "the resumed run was not on 2 ranks"
grep -q "iter    $total/$total" "$work/out" || fail "the resumed run did not reach iteration $total"
echo "   $(grep -o 'resuming.*' "$work/out" | head -1); reached $total on 2 ranks"
echo "all MPI fault checks passed"
