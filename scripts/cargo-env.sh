# Sourced by scripts/test.sh, scripts/demo.sh and local/stack.py's callers: the one environment
# every cargo call of `make test` and `make demo` compiles in, so their builds share everything.
#
# clippy-driver as the workspace's rustc wrapper: each of our own crates compiles once, with
# clippy's lints (`cargo clippy` passes the same CLIPPY_ARGS; `__CLIPPY_HACKERY__` is its
# separator) and codegen, while dependencies compile with plain rustc as in any build. A separate
# `cargo clippy` would check every dependency a second time (~4 min cold on 2 cores).
# AGENTBUILD_NO_CLIPPY=1 leaves plain rustc (then `cargo test` compiles our crates again).
# Outside `make test` this also means a warning stops `make local-up` and `make demo` from
# compiling, as it fails `make test`.
if [[ -z "${AGENTBUILD_NO_CLIPPY:-}" ]]; then
  if ! RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"; then
    echo "scripts/cargo-env.sh: no clippy-driver (rustup component add clippy); AGENTBUILD_NO_CLIPPY=1 builds without lints" >&2
    return 1
  fi
  export RUSTC_WORKSPACE_WRAPPER
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
else
  echo "scripts/cargo-env.sh: AGENTBUILD_NO_CLIPPY=1: our crates compile without clippy's lints" >&2
fi
