#!/usr/bin/env bash
# Builds the desk as one folder, dist/blotter (run dist/blotter/blotter), with PyInstaller
# in a virtualenv of its own, then proves the bundle works on its own: the version, a short
# headless session whose replay check passes (the store's committer process and replay's
# workers are spawned from the bundle), and the window rendered offscreen to a PNG.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=build/package-venv
python3 -m venv "$venv"
# A regular install, not an editable one: the bundle must hold the files, not a path to them.
"$venv/bin/pip" install -q '.[postgres]' 'pyinstaller>=6.10'
"$venv/bin/pyinstaller" --noconfirm --log-level ERROR \
    --distpath dist --workpath build/pyinstaller packaging/blotter.spec

smoke=$(mktemp -d)
trap 'rm -rf "$smoke"' EXIT
bundle=dist/blotter/blotter
"$bundle" --version
"$bundle" headless --duration 2 --db "sqlite:///$smoke/headless.db" >"$smoke/summary.txt"
grep -q "projections match" "$smoke/summary.txt" ||
    { cat "$smoke/summary.txt" >&2; echo "the bundle's replay check failed" >&2; exit 1; }
QT_QPA_PLATFORM=offscreen "$bundle" demo --db "sqlite:///$smoke/demo.db" \
    --screenshot "$smoke/desk.png" --after 3 2> >(grep -v propagateSizeHints >&2)
[[ -s $smoke/desk.png ]] || { echo "the bundle saved no screenshot" >&2; exit 1; }
echo "dist/blotter: $(du -sh dist/blotter | cut -f1), headless replay and window checked"
