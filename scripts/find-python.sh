#!/usr/bin/env bash
# Print the path of a Python of the given version (default 3.12) for the Django 6 suite:
# python3.X on PATH if it runs, else one pyenv installed. Exit 1 saying how to get one.
set -euo pipefail
version="${1:-3.12}"
if command -v "python$version" >/dev/null 2>&1 && "python$version" -c '' 2>/dev/null; then
    command -v "python$version"
    exit 0
fi
for root in "${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv; do
    [ -n "$root" ] || continue
    for candidate in "$root"/versions/"$version".*/bin/python"$version"; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            exit 0
        fi
    done
done
echo "no Python $version found (python$version on PATH or pyenv): install one for the Django 6 suite" >&2
exit 1
