#!/usr/bin/env bash
# The test command. On a fresh Debian or Ubuntu machine it sets up everything it needs, then
# runs lint, the unit and integration tests, and every Molecule scenario:
#   1. system packages the tests use (debootstrap, promtool from Debian's prometheus, shellcheck)
#   2. ./.venv with the `test` group of pyproject.toml        (scripts/bootstrap.sh test)
#   3. a Docker engine, started if none answers              (scripts/docker-engine.sh)
#   4. the local systemd base images, rebuilt on recipe change (tests/images/build.sh)
#   5. lint: yamllint (strict), ansible-lint (production), ruff, shellcheck
#   6. pytest: tests/unit, tests/integration, tests/lint; then each package under packages/
#      (mypy, then its own pytest)
#   +  opt-in stage `real`: tests/real (real components: vLLM CPU build, Open WebUI, OpenHands)
#      and any Molecule scenario listed in REAL_SCENARIOS (default: sandbox_engine:stack)
#   7. Molecule: roles/*/molecule/* and molecule/* (the whole-site scenarios)
#   5 and 6 run as one job beside the scenarios (MOLECULE_JOBS at a time); results print at the end.
# Options (environment):
#   TEST_STAGES="lint pytest molecule"   run only these stages (set-up always runs)
#   TEST_SCENARIOS="base caddy site:backup"  only these scenarios (ROLE[:SCENARIO] or site:NAME)
#   MOLECULE_JOBS=2                      jobs side by side (the checks are one job, the first)
#   MOLECULE_FIRST="agent_stack:default ..."  start these first (the longest; the rest follow)
#   REAL_SCENARIOS="ROLE:SCENARIO ..."  scenarios that run only with the stage `real` (with
#                                        `molecule` too). Default: sandbox_engine:stack (about 13
#                                        min more; agent_stack:default runs the real stack in every
#                                        run). REAL_SCENARIOS= (empty) puts it in the default run.
# Logs of every stage and scenario: .cache/test-logs/. .ci/run calls exactly this script.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
logs=$top/.cache/test-logs
mkdir -p "$logs"
stages=${TEST_STAGES:-lint pytest molecule}
jobs=${MOLECULE_JOBS:-2}
passed=0 failed=0 failures=()
t0=$(date +%s)

say() { printf '\n== %s\n' "$*"; }
record() {  # name rc seconds log
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); printf 'PASS  %-40s %4ss\n' "$1" "$3"
  else
    failed=$((failed + 1)); failures+=("$1"); printf 'FAIL  %-40s %4ss (log: %s)\n' "$1" "$3" "$4"
    tail -n 40 "$4" | sed 's/^/    | /'
  fi
}
setup_or_die() {
  local name=$1; shift
  say "$name"
  if ! "$@"; then echo "test: set-up step '$name' failed; nothing was tested." >&2; exit 1; fi
}

# --- set-up -------------------------------------------------------------------------------
need_apt=()
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
# Real Redis for packages/aw-task's tests (the fixture starts its own on a free port, AOF on).
command -v redis-server >/dev/null || need_apt+=(redis-server)
# OpenHands 1.11.0 gives every conversation the browser tool; its agent-server answers 500 to a
# new conversation without Chromium on PATH (tests/real/test_openhands_app.py).
if [[ " $stages " == *" real "* ]]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    setup_or_die "system packages: ${need_apt[*]}" bash -c \
      "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends ${need_apt[*]} >/dev/null"
    # Debian's prometheus package starts a server on :9090; the tests only need promtool.
    if [[ " ${need_apt[*]} " == *" prometheus "* ]]; then
      { systemctl disable --now prometheus || pkill -x prometheus; } >/dev/null 2>&1 || true
    fi
    # Debian's redis-server package starts a server on :6379; the tests start their own.
    if [[ " ${need_apt[*]} " == *" redis-server "* ]]; then
      systemctl disable --now redis-server >/dev/null 2>&1 || true
    fi
  else
    echo "test: missing ${need_apt[*]}. Fix: sudo apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
fi
setup_or_die "python environment" "$top/scripts/bootstrap.sh" test
export PATH="$top/.venv/bin:$PATH"
if [[ " $stages " == *" molecule "* ]]; then
  setup_or_die "docker engine" "$top/scripts/docker-engine.sh"
  setup_or_die "base images" "$top/tests/images/build.sh"
fi
echo "set-up took $(( $(date +%s) - t0 ))s"

# --- lint, pytest, real: the checks ----------------------------------------------------------
# They run as one job of the Molecule pool below (the first to start), so the second core is not
# idle while pytest runs one ansible-playbook after another; results are recorded in order after.
check_stage() {  # name command...   (appends "name rc seconds log" to checks.results)
  local name=$1 log="$logs/$1.log" start rc; shift
  start=$(date +%s)
  "$@" >"$log" 2>&1; rc=$?
  echo "$name $rc $(( $(date +%s) - start )) $log" >> "$logs/checks.results"
}
run_checks() {
  : > "$logs/checks.results"
  if [[ " $stages " == *" lint "* ]]; then
    check_stage yamllint yamllint -s .
    check_stage ansible-lint ansible-lint --offline -q
    check_stage ruff bash -c 'ruff check . && ruff format --check .'
    check_stage shellcheck bash -c 'shopt -s nullglob; shellcheck -x scripts/*.sh scripts/aw-* tests/images/build.sh tests/images/real/*.sh tests/images/real/files/*/*.sh tests/real/*.sh tests/device/*.sh .ci/run'
  fi
  if [[ " $stages " == *" pytest "* ]]; then
    check_stage pytest pytest -q -p no:cacheprovider
    # Each Python package of the project is typed and tested on its own (packages/NAME).
    for pkg in packages/*/pyproject.toml; do
      [ -f "$pkg" ] || continue
      dir=$(dirname "$pkg")
      check_stage "pytest-$(basename "$dir")" bash -c "cd '$dir' && mypy && pytest -q -p no:cacheprovider"
    done
  fi
  # Real components (opt-in: TEST_STAGES="... real"): vLLM's CPU build with a tiny model, Open
  # WebUI, OpenHands, built by tests/real/build.sh into a cache keyed by recipe hash
  # (tests/real/README.md). Not in the default stages: on a fresh 2-core machine the builds alone
  # take 12-30 minutes.
  if [[ " $stages " == *" real "* ]]; then
    check_stage pytest-real pytest -q -p no:cacheprovider tests/real
  fi
}
record_checks() {
  while read -r name rc secs log; do record "$name" "$rc" "$secs" "$log"; done < "$logs/checks.results"
  if [ -f "$logs/pytest.log" ] && [[ " $stages " == *" pytest "* ]]; then
    grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$logs/pytest.log" | tail -n 1
  fi
}
checks_wanted=0
for s in lint pytest real; do [[ " $stages " == *" $s "* ]] && checks_wanted=1; done

# --- molecule ----------------------------------------------------------------------------------
if [[ " $stages " == *" molecule "* ]]; then
  say "checks and molecule (${jobs} jobs at a time)"
  scenarios=()
  real_scenarios=${REAL_SCENARIOS-sandbox_engine:stack}
  for f in roles/*/molecule/*/molecule.yml molecule/*/molecule.yml; do
    [ -f "$f" ] || continue
    scenario=$(basename "$(dirname "$f")")
    case $f in
      roles/*) role=${f#roles/}; role=${role%%/*}; id="$role:$scenario" ;;
      *) role=site; id="site:$scenario" ;;
    esac
    if [ -n "${TEST_SCENARIOS:-}" ]; then
      match=0
      for want in $TEST_SCENARIOS; do
        [[ "$id" == "$want" || "$id" == "$want:default" || "${id%%:*}" == "$want" ]] && match=1
      done
      [ $match -eq 1 ] || continue
    fi
    if [[ " $real_scenarios " == *" $id "* && " $stages " != *" real "* ]]; then
      echo "molecule: $id runs only with the stage 'real' (REAL_SCENARIOS)"
      continue
    fi
    scenarios+=("$id")
  done
  # The longest scenarios start first, so the last slot is not left with a long one alone.
  first=${MOLECULE_FIRST:-agent_stack:default sandbox_engine:stack sandbox_engine:default site:fleet nvidia_driver:upgrade code_index:default caddy:default site:operations site:model-upgrade nvidia_driver:default}
  ordered=()
  [ "$checks_wanted" -eq 1 ] && ordered+=(checks)
  for id in $first; do
    for s in "${scenarios[@]}"; do [ "$s" = "$id" ] && ordered+=("$s"); done
  done
  for s in "${scenarios[@]}"; do
    [[ " $first " == *" $s "* ]] || ordered+=("$s")
  done
  run_scenario() {
    local id=$1 role=${1%%:*} scenario=${1#*:} log start rc
    if [ "$id" = checks ]; then run_checks; return; fi
    log="$logs/molecule-${role}-${scenario}.log"
    start=$(date +%s)
    "$top/scripts/molecule.sh" "$role" test -s "$scenario" >"$log" 2>&1; rc=$?
    echo "$id $rc $(( $(date +%s) - start )) $log" >> "$logs/molecule.results"
  }
  : > "$logs/molecule.results"
  running=0
  for id in "${ordered[@]}"; do
    run_scenario "$id" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  done
  wait
  [ "$checks_wanted" -eq 1 ] && record_checks
  while read -r id rc secs log; do record "molecule $id" "$rc" "$secs" "$log"; done < "$logs/molecule.results"
elif [ "$checks_wanted" -eq 1 ]; then
  say "checks"
  run_checks
  record_checks
fi

# --- summary -----------------------------------------------------------------------------------
say "summary after $(( $(date +%s) - t0 ))s"
[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
