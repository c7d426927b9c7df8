#!/usr/bin/env bash
# Sourced by scripts/test.sh: make test's scratch space on RAM-backed /dev/shm when the host has
# it. The harness, the glue tests and the end-to-end suite create and delete ~100,000 small files
# (uv installs, layer builds, pytest's tmp_path); on the ext4 disks here creating a file soon
# after many deletions costs ~0.6 ms of kernel CPU against ~0.04 ms on tmpfs.
# Sets TEST_TMP (empty: none) and exports TMPDIR=$TEST_TMP, a fresh agentbuild-test.<pid>.XXXXXX;
# test.sh removes it when the run ends, and a killed run's (its pid gone) is removed here by the
# next. Only with 4 GB free there (a run peaks at ≈ 1.4 GB; a container's default /dev/shm is
# 64 MB). AGENTBUILD_TEST_TMPDIR=keep: the caller's TMPDIR instead (the local stack's layer builds
# pick their own scratch space: local/agentbuild_local/codebuild_real.py). AGENTBUILD_SHM: another
# folder than /dev/shm (tests).
test_tmpdir() {
  local shm="${AGENTBUILD_SHM:-/dev/shm}" left pid kb
  TEST_TMP=""
  for left in "$shm"/agentbuild-test.*; do
    pid="${left#"$shm"/agentbuild-test.}"; pid="${pid%%.*}"
    if [[ -d "$left" && "$pid" =~ ^[0-9]+$ && ! -d "/proc/$pid" ]]; then rm -rf -- "$left" 2>/dev/null || true; fi
  done
  [[ "${AGENTBUILD_TEST_TMPDIR:-}" != keep && -d "$shm" && -w "$shm" ]] || return 0
  kb="$(df -Pk "$shm" 2>/dev/null | awk 'NR == 2 { print $4 }')"
  [[ "$kb" =~ ^[0-9]+$ ]] && (( kb >= 4 * 1024 * 1024 )) || return 0
  TEST_TMP="$(mktemp -d "$shm/agentbuild-test.$$.XXXXXX")"
  export TMPDIR="$TEST_TMP"
}
test_tmpdir
