#!/usr/bin/env bash
# Builds the desk as one folder, dist/blotter (run dist/blotter/blotter), with PyInstaller
# in a virtualenv of its own, then proves the bundle works on its own: the version, a short
# headless session whose replay check passes (the store's committer process and replay's
# workers are spawned from the bundle), the window rendered offscreen to a PNG, and, when
# BLOTTER_TEST_PG_URL names a server (as in CI), the PostgreSQL driver reaching it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=build/package-venv
python3 -m venv "$venv"
# A regular install, not an editable one: the bundle must hold the files, not a path to them.
# setuptools builds in build/lib and leaves there what an earlier build had: start clean.
rm -rf build/lib
"$venv/bin/pip" install -q '.[postgres]' 'pyinstaller>=6.10'
"$venv/bin/pyinstaller" --noconfirm --log-level ERROR \
    --distpath dist --workpath build/pyinstaller packaging/blotter.spec

smoke=$(mktemp -d)
trap 'rm -rf "$smoke"' EXIT
bundle=dist/blotter/blotter
fail() {
    echo "packaging/build.sh: $1" >&2
    exit 1
}

"$bundle" --version
if ! "$bundle" headless --duration 2 --db "sqlite:///$smoke/headless.db" >"$smoke/summary.txt"; then
    cat "$smoke/summary.txt" >&2
    fail "the bundle's headless run failed"
fi
grep -q "projections match" "$smoke/summary.txt" || { cat "$smoke/summary.txt" >&2; fail "no replay check"; }

QT_QPA_PLATFORM=offscreen "$bundle" demo --db "sqlite:///$smoke/demo.db" \
    --screenshot "$smoke/desk.png" --after 3
[[ -s $smoke/desk.png ]] || fail "the bundle saved no screenshot"

if [[ -n ${BLOTTER_TEST_PG_URL:-} ]]; then
    # A stream that is not there: one line and exit 2 once the driver has connected and read
    # (the tests may have left their database at any revision, which is one line too); a
    # missing driver or no connection is a failure.
    status=0
    "$bundle" events no-such-stream --db "$BLOTTER_TEST_PG_URL" 2>"$smoke/pg.txt" || status=$?
    if [[ $status -ne 2 ]] || grep -qE "is not installed|cannot reach" "$smoke/pg.txt"; then
        cat "$smoke/pg.txt" >&2
        fail "the bundle could not read PostgreSQL"
    fi
    echo "PostgreSQL read from the bundle: $(cat "$smoke/pg.txt")"
fi
echo "dist/blotter: $(du -sh dist/blotter | cut -f1), headless replay and window checked"
