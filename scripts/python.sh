# Sourced by scripts/test.sh: `ensure_python_venv` makes the virtual environment of the Python interop test
# (tests/python/requirements.txt, pinned) under target/python-venv, installing python3 and its venv module with
# apt if missing (Debian/Ubuntu, as root), and prints its interpreter. The venv is reused while the requirements
# and the Python version are unchanged.

ensure_python_venv() {
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing python3 and python3-venv (apt-get)..." >&2
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2
    else
      echo "python3 with the venv module is needed: install it, or set TEST_PYTHON to a Python that has the" \
        "packages of tests/python/requirements.txt" >&2
      return 1
    fi
  fi
  local venv=target/python-venv
  local want
  want="$(sha256sum tests/python/requirements.txt | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version)')"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/township-requirements" 2>/dev/null)" != "$want" ]; then
    echo "creating $venv from tests/python/requirements.txt..." >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt >&2
    # Written last: an interrupted install is redone on the next run.
    printf '%s' "$want" >"$venv/township-requirements"
  fi
  echo "$PWD/$venv/bin/python"
}
