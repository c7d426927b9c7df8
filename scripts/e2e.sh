#!/usr/bin/env bash
# The end-to-end suite (tests/e2e) on the local stack: reuses a running stack, or starts one
# (five lanes: one throwaway stack per lane) and stops it afterwards — also when a test fails or
# the run is interrupted. Exits with
# pytest's status. Extra arguments go to pytest (e.g. scripts/e2e.sh -k deadline); an
# interrupted run stops its lanes (their process groups) and every stack it started.
# AGENTBUILD_LOCAL_DIR selects another stack folder (default .local), as for local/stack.py.
#
# Five lanes at once, each on its own stack (its own moto, handlers and folder; the handlers
# are the same binaries; 2 cores: the lanes share the CPU, docs/testing.md):
#   concurrent  the scenarios that keep to their own names (pytest-xdist,
#               AGENTBUILD_E2E_WORKERS processes, default 5), in .local-e2e/concurrent
#   code, supply  the `serial` code-artifact scenarios (real dependency layers: uv installs of
#               real wheels; they count the layer project's builds), one at a time, in
#               .local-e2e/code and .local-e2e/supply (supply also runs test_callback's and
#               test_stacks's)
#   stackwide   the other `serial` scenarios (they count or reset what the whole stack does;
#               tests/e2e/conftest.py marks them), one at a time, in .local-e2e/stackwide
#   serial      the fault matrix and the fleet (test_faults, test_rebuild, test_fleet_guard),
#               one at a time, on the running main stack if there is one (their figures files
#               land in its folder), else on a throwaway stack in .local-e2e/serial
# Each lane's output is printed when it ends, with its wall time and slowest tests.
# AGENTBUILD_E2E_LANES=1: one stack, the concurrent phase then the serial one.
# AGENTBUILD_E2E_WORKERS=0 (or no pytest-xdist): one stack, everything one at a time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
[[ -x "$PY" ]] || bash scripts/tools.sh

# The lanes on throwaway stacks: name, then the test files it runs (`stackwide`: every other
# `serial` scenario but the main stack's lane's).
CODE_LANE=(tests/e2e/test_code_artifact.py)
# The callback test's `serial` scenarios (a 20 s build) and the second-stack test ride with
# supply's one layer build: the lanes come out even (docs/testing.md has the lanes' times).
SUPPLY_LANE=(tests/e2e/test_supply_chain.py tests/e2e/test_callback.py tests/e2e/test_stacks.py)
MAIN_LANE=(tests/e2e/test_faults.py tests/e2e/test_rebuild.py tests/e2e/test_fleet_guard.py)

started="" extra_dirs=() lane_pids=()
stop_stacks() {
  local d p
  # Each lane is its own process group (set -m below): its pytest and xdist workers end with it.
  for p in "${lane_pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for p in "${lane_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  local t=$SECONDS
  for d in "${extra_dirs[@]}"; do
    AGENTBUILD_LOCAL_DIR="$d" python3 local/stack.py down >/dev/null 2>&1 &  # all at once
  done
  wait 2>/dev/null || true
  if [[ ${#extra_dirs[@]} -gt 0 ]]; then echo "e2e: the lanes' stacks stopped in $((SECONDS - t)) s" >&2; fi
  if [[ -n "$started" ]]; then
    echo "e2e: stopping the local stack it started" >&2
    python3 local/stack.py down >&2 || true
  fi
}
trap stop_stacks EXIT
trap 'exit 130' INT TERM

WORKERS="${AGENTBUILD_E2E_WORKERS:-5}"
LANES="${AGENTBUILD_E2E_LANES:-5}"
if [[ "$WORKERS" != 0 ]] && ! "$PY" -c 'import xdist' 2>/dev/null; then
  echo "e2e: pytest-xdist is not installed (make tools): one phase, one test at a time" >&2
  WORKERS=0
fi

serial_dir=""  # the serial lane's stack: the running main stack, else a throwaway one
if python3 local/stack.py status >/dev/null 2>&1; then
  echo "e2e: reusing the running local stack (make local-down local-up picks up code changes)" >&2
  serial_dir="${AGENTBUILD_LOCAL_DIR:-.local}"
elif [[ "$WORKERS" != 0 && "$LANES" != 1 ]]; then
  # Five lanes, five throwaway stacks started at once (below) from the handlers compiled here.
  # (The main stack would restore and save its bucket and images, which grow with every run.)
  echo "e2e: compiling the handlers; each lane starts its own stack ..." >&2
  "$PY" local/stack.py up --build-only >/dev/null
else
  echo "e2e: starting the local stack ..." >&2
  started=1
  "$PY" local/stack.py up >/dev/null
fi
rm -f "${AGENTBUILD_LOCAL_DIR:-.local}/announced.jsonl"

# pytest's 5 is "no test selected" (e.g. -k picked only another lane's): a failure only when
# every lane or phase selected nothing.
combine() {
  local any_ran="" worst=0 s
  for s in "$@"; do
    if [[ "$s" != 5 ]]; then any_ran=1; [[ "$s" != 0 && "$worst" == 0 ]] && worst=$s; fi
  done
  if [[ -z "$any_ran" ]]; then echo 5; else echo "$worst"; fi
}

set +e
if [[ "$WORKERS" == 0 ]]; then
  "$PY" -m pytest tests/e2e -q "$@"
  status=$?
elif [[ "$LANES" == 1 ]]; then
  T=$SECONDS
  echo "e2e: concurrent phase ($WORKERS workers) ..." >&2
  "$PY" -m pytest tests/e2e -q --durations=8 -n "$WORKERS" --dist worksteal -m "not serial" "$@"
  first=$?
  echo "e2e: concurrent phase took $((SECONDS - T)) s; serial phase ..." >&2
  T=$SECONDS
  "$PY" -m pytest tests/e2e -q --durations=12 -p no:xdist -m serial "$@"
  second=$?
  echo "e2e: serial phase took $((SECONDS - T)) s" >&2
  status=$(combine "$first" "$second")
else
  # The throwaway stacks run the binaries just built (`up --build-only` above; a reused main
  # stack's were built when it started). Fixed ports from AGENTBUILD_LOCAL_*_PORT would clash:
  # the throwaway stacks pick free ones.
  mkdir -p .local-e2e
  rm -f .local-e2e/*.log .local-e2e/*.status .local-e2e/*.seconds
  free_ports=(env -u AGENTBUILD_LOCAL_MOTO_PORT -u AGENTBUILD_LOCAL_WATCH_PORT -u AGENTBUILD_LOCAL_INJECT_PORT)
  T_UP=$SECONDS
  throwaway=(concurrent code supply stackwide)
  if [[ -z "$serial_dir" ]]; then throwaway+=(serial); serial_dir=.local-e2e/serial; fi
  for lane in "${throwaway[@]}"; do
    dir=".local-e2e/$lane"
    AGENTBUILD_LOCAL_DIR="$dir" python3 local/stack.py down >/dev/null 2>&1 || true  # a killed run's
    rm -rf "$dir"
    extra_dirs+=("$dir")
    AGENTBUILD_LOCAL_DIR="$dir" "${free_ports[@]}" "$PY" local/stack.py up --no-build --throwaway >/dev/null 2>"$dir.up.log" &
  done
  wait_ok=0
  for job in $(jobs -p); do wait "$job" || wait_ok=$?; done
  if [[ "$wait_ok" != 0 ]]; then
    cat .local-e2e/*.up.log >&2
    echo "e2e: a lane's stack did not start (log above)" >&2
    exit 1
  fi
  echo "e2e: the lanes' stacks started in $((SECONDS - T_UP)) s" >&2
  others=()
  for m in "${CODE_LANE[@]}" "${SUPPLY_LANE[@]}" "${MAIN_LANE[@]}"; do others+=(--ignore "$m"); done
  T=$SECONDS
  echo "e2e: five lanes at once: concurrent ($WORKERS workers), code, supply, stackwide, serial ..." >&2
  run_lane() {  # name, then pytest arguments; writes .local-e2e/<name>.log, .status, .seconds
    local name="$1"; shift
    local t0=$SECONDS
    "$PY" -m pytest "$@" >".local-e2e/$name.log" 2>&1
    echo $? >".local-e2e/$name.status"
    echo "$((SECONDS - t0))" >".local-e2e/$name.seconds"
  }
  one_at_a_time=(-q --durations=8 -p no:xdist -m serial)
  set -m  # each lane in its own process group, so an interrupted run stops all of it
  AGENTBUILD_LOCAL_DIR=.local-e2e/concurrent run_lane concurrent tests/e2e -q --durations=8 \
    -n "$WORKERS" --dist worksteal -m "not serial" "$@" &
  lane_pids+=($!)
  AGENTBUILD_LOCAL_DIR=.local-e2e/code run_lane code "${CODE_LANE[@]}" "${one_at_a_time[@]}" "$@" &
  lane_pids+=($!)
  AGENTBUILD_LOCAL_DIR=.local-e2e/supply run_lane supply "${SUPPLY_LANE[@]}" "${one_at_a_time[@]}" "$@" &
  lane_pids+=($!)
  AGENTBUILD_LOCAL_DIR=.local-e2e/stackwide run_lane stackwide tests/e2e "${others[@]}" \
    "${one_at_a_time[@]}" "$@" &
  lane_pids+=($!)
  AGENTBUILD_LOCAL_DIR="$serial_dir" run_lane serial "${MAIN_LANE[@]}" "${one_at_a_time[@]}" "$@" &
  lane_pids+=($!)
  wait "${lane_pids[@]}"
  lane_pids=()
  set +m
  statuses=() summary=""
  for lane in concurrent code supply stackwide serial; do
    echo "" >&2
    echo "== e2e lane $lane: $(cat ".local-e2e/$lane.seconds") s" >&2
    cat ".local-e2e/$lane.log"
    statuses+=("$(cat ".local-e2e/$lane.status")")
    summary+=" $lane $(cat ".local-e2e/$lane.status"),"
  done
  echo "e2e: five lanes took $((SECONDS - T)) s (pytest exit codes:${summary%,})" >&2
  status=$(combine "${statuses[@]}")
fi
set -e
exit "$status"
