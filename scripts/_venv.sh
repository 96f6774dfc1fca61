# Sourced by scripts/run and scripts/test: make .venv and install a requirements file into it,
# again only when that file changed since the last install.
# This machine's pip configuration names package folders that may be absent; pip then warns
# once per package. Keep pip's exit status, drop only that line.
quiet_pip() {
  "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

ensure_venv() {
  local requirements=$1
  local python=${PYTHON:-python3.11}
  command -v "$python" >/dev/null 2>&1 || python=python3
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating virtual environment .venv ($("$python" --version))"
    "$python" -m venv .venv
  fi
  local stamp=".venv/.installed-$(basename "$requirements")"
  local digest
  digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    echo "==> installing $requirements into .venv"
    quiet_pip .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    quiet_pip .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$digest" >"$stamp"
  fi
}
