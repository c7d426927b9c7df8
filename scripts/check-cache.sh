# Sourced by scripts/check-template.sh: `checked TITLE INPUT... -- COMMAND...` runs COMMAND
# unless it passed before on exactly these inputs. The key is the SHA-256 of the title (tool
# version, settings), the command's words (the region is one: `--regions`) and each input's
# path and SHA-256 ($CHECK_SCRATCH written as a constant in both, so a fresh mktemp does not
# change the key); an input written `?path` may be absent (a config file the tool would read if
# it existed: its absence is part of the key). A pass leaves $CHECK_CACHE/<key>; a failure
# leaves nothing and fails the caller. The cache is ignored when git tracks anything under it
# (a committed "pass" proves nothing) and when AGENTBUILD_NO_CHECK_CACHE=1.
# tests/buildspec/test_check_cache.py tests it, with inputs that must change the key.
CHECK_CACHE="${CHECK_CACHE:-target/check-cache}"
checked() {
  local title="$1" key words=() word inputs=() digests=()
  shift
  while [[ $# -gt 0 && "$1" != "--" ]]; do inputs+=("$1"); shift; done
  [[ $# -gt 1 && ${#inputs[@]} -gt 0 ]] || { echo "checked: usage: checked TITLE INPUT... -- COMMAND..." >&2; return 2; }
  shift
  for word in "${inputs[@]}"; do
    local name="${word#\?}"
    if [[ -n "${CHECK_SCRATCH:-}" ]]; then name="${name//"$CHECK_SCRATCH"/SCRATCH}"; fi
    if [[ -f "${word#\?}" ]]; then
      digests+=("$name $(sha256sum <"${word#\?}" | cut -d' ' -f1)")
    elif [[ "$word" == \?* ]]; then
      digests+=("$name absent")
    else
      echo "checked: $title: input $word is not a file" >&2
      return 1
    fi
  done
  for word in "$@"; do
    if [[ -n "${CHECK_SCRATCH:-}" ]]; then word="${word//"$CHECK_SCRATCH"/SCRATCH}"; fi
    words+=("$word")
  done
  key="$(printf '%s\0' "$title" "${words[@]}" "${digests[@]}" | sha256sum | cut -d' ' -f1)"
  local use_cache=1
  if [[ "${AGENTBUILD_NO_CHECK_CACHE:-}" == 1 ]] || [[ -n "$(git ls-files -- "$CHECK_CACHE" 2>/dev/null)" ]]; then
    use_cache=""
  fi
  if [[ -n "$use_cache" && -f "$CHECK_CACHE/$key" ]]; then
    echo "check: $title: passed before on these inputs ($CHECK_CACHE/${key:0:12}…)"
    return 0
  fi
  echo "check: $title"
  "$@" || return
  if [[ -n "$use_cache" ]]; then mkdir -p "$CHECK_CACHE" && touch "$CHECK_CACHE/$key"; fi
}
