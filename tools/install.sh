#!/usr/bin/env bash
# Idempotent installer of the mmmcl stack.
#
#   VENV=.venv bash tools/install.sh     # default: create/update ./.venv
#   VENV= bash tools/install.sh          # install into the python on PATH
#
# mmcv 2.1.0 ships as an sdist only; it is built once against the installed
# torch and the wheel is cached outside the clone, keyed by mmcv, torch,
# Python and CPU/CUDA, in ${MMMCL_WHEEL_CACHE:-~/.cache/mmmcl/wheels}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV-.venv}"
PYTHON_BOOT="${PYTHON:-python3.11}"
WHEEL_CACHE="${MMMCL_WHEEL_CACHE:-$HOME/.cache/mmmcl/wheels}"
LOG_DIR="$ROOT/work_dirs/install_logs"
STACK="$ROOT/requirements/stack.txt"
pin() { grep "^$1==" "$STACK"; }
MMCV_VERSION="$(pin mmcv | sed 's/^mmcv==//')"
mkdir -p "$LOG_DIR"

say() { echo "[mmmcl install] $*"; }

# run_step NAME CMD...: run CMD with its output in a log; on failure name the
# step and the log and stop.
run_step() {
    local name="$1"; shift
    local log="$LOG_DIR/$name.log"
    say "$name (log: $log)"
    if ! "$@" >"$log" 2>&1; then
        echo "[mmmcl install] FAILED at step '$name'. Last lines of $log:" >&2
        tail -n 25 "$log" >&2
        echo "[mmmcl install] Full log: $log" >&2
        exit 1
    fi
}

cd "$ROOT"
if [ -n "$VENV" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        run_step venv "$PYTHON_BOOT" -m venv "$VENV"
    fi
    PY="$ROOT/$VENV/bin/python"
    case "$VENV" in /*) PY="$VENV/bin/python" ;; esac
else
    PY="$(command -v python || command -v python3)"
fi
PIP=("$PY" -m pip --disable-pip-version-check)

# Everything that decides what gets installed; unchanged -> nothing to do.
STAMP_FILE="$("$PY" -c 'import sys; print(sys.prefix)')/.mmmcl-install-stamp"
STAMP="$(cat requirements/*.txt requirements.txt setup.py tools/install.sh "$PY" 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$STAMP" ] \
        && [ -e "$ROOT/mmmcl/.mim/model-index.yml" ] \
        && "$PY" -c 'import mmcv.ops, mmdet, mmseg, mmpretrain, mmmcl' 2>/dev/null; then
    say "up to date ($PY)"
    exit 0
fi

run_step build-tools "${PIP[@]}" install 'setuptools>=77,<81' wheel ninja
run_step torch "${PIP[@]}" install "$(pin torch)" "$(pin torchvision)"
run_step mmengine "${PIP[@]}" install "$(pin mmengine)"

# ---- mmcv with ops: cached wheel, or built from the sdist -------------------
read -r TORCH_VERSION PY_TAG DEVICE < <("$PY" - <<'PYEOF'
import shutil, sys, torch
cuda = torch.cuda.is_available() and shutil.which('nvcc') is not None
device = f"cu{torch.version.cuda.replace('.', '')}" if cuda else 'cpu'
print(torch.__version__.split('+')[0], f'cp{sys.version_info.major}{sys.version_info.minor}', device)
PYEOF
)
MMCV_CACHE="$WHEEL_CACHE/mmcv-$MMCV_VERSION/torch-$TORCH_VERSION-$PY_TAG-$DEVICE"
mmcv_ok() { (cd / && "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'") 2>/dev/null; }

# Runs in a subshell so that its temporary folder goes whatever happens;
# run_step calls it in an `if`, where `set -e` is off: hence `|| exit 1`.
build_mmcv() (
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "${PIP[@]}" download --no-deps --no-binary :all: --no-build-isolation \
        "mmcv==$MMCV_VERSION" -d "$tmp/sdist" || exit 1
    tar -xzf "$tmp"/sdist/mmcv-*.tar.gz -C "$tmp" || exit 1
    src="$tmp/mmcv-$MMCV_VERSION"
    # torch >= 2.6 headers need C++20; mmcv's setup.py hard-codes C++17 last.
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py" || exit 1
    if [ "$DEVICE" != cpu ]; then export FORCE_CUDA=1; fi
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "${PIP[@]}" wheel --no-build-isolation --no-deps -v . -w "$tmp/dist") \
        || exit 1
    # Only a complete, importable wheel enters the cache (atomic rename).
    "${PIP[@]}" install --force-reinstall --no-deps "$tmp"/dist/mmcv-*.whl \
        || exit 1
    mmcv_ok || { echo "built mmcv does not import: not cached" >&2; exit 1; }
    mkdir -p "$MMCV_CACHE"
    whl="$(basename "$tmp"/dist/mmcv-*.whl)"
    cp "$tmp/dist/$whl" "$MMCV_CACHE/.$whl.partial" || exit 1
    mv "$MMCV_CACHE/.$whl.partial" "$MMCV_CACHE/$whl"
)

if ! mmcv_ok; then
    if ls "$MMCV_CACHE"/mmcv-*.whl >/dev/null 2>&1; then
        run_step mmcv-from-cache "${PIP[@]}" install --no-deps "$MMCV_CACHE"/mmcv-*.whl
    else
        say "no cached mmcv wheel in $MMCV_CACHE: building mmcv $MMCV_VERSION with ops (10-15 min)"
        run_step mmcv-build build_mmcv
    fi
fi
run_step mmcv-check mmcv_ok

run_step requirements "${PIP[@]}" install -r requirements/stack.txt -r requirements.txt
run_step mmmcl "${PIP[@]}" install --no-build-isolation --no-deps -e .
run_step import-check "$PY" -c 'import mmcv.ops, mmdet, mmseg, mmpretrain, mmmcl'
echo "$STAMP" > "$STAMP_FILE"
say "done ($PY)"
