# shellcheck shell=bash
# Progress for the test bed's long build steps (sourced by hack/build-testbed and
# hack/build-images): `step WHAT COLD WARM FUNCTION` runs FUNCTION with its output
# in $logs/build-FUNCTION.log, says what it does and about how long it takes,
# prints a heartbeat every minute, and shows the log's tail when it fails.
# Needs: $tag (the log prefix), $logs and $steps (the number of steps).
step_no=0

say() { printf '[%s] %s\n' "$tag" "$*" >&2; }

step() {
  local what=$1 cold=$2 warm=$3 fn=$4 estimate pid t0 last now logfile
  step_no=$((step_no + 1))
  estimate="$cold on a new machine, $warm with the caches"
  logfile=$logs/build-$fn.log
  say "[$step_no/$steps] $what (about $estimate)"
  t0=$(date +%s); last=$t0
  "$fn" >"$logfile" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    now=$(date +%s)
    if (( now - last >= 60 )); then
      say "      ... still at: $what, $(( (now - t0) / 60 ))m$(( (now - t0) % 60 ))s so far (about $estimate)"
      last=$now
    fi
  done
  if ! wait "$pid"; then
    say "[$step_no/$steps] FAILED: $what; the last lines of $logfile:"
    tail -n 40 "$logfile" >&2
    exit 1
  fi
  say "[$step_no/$steps] $what: done in $(( $(date +%s) - t0 ))s"
}
