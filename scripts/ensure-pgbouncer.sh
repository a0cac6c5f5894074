#!/usr/bin/env bash
# Make sure Debian's pgbouncer is installed: the tests run a private one of their own
# (tests/bouncer.py: its own ini, port and process, in transaction pooling mode).
# Safe to run any number of times.
set -euo pipefail

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    echo "installing pgbouncer"
    apt-get install -y pgbouncer >/dev/null || { apt-get update >/dev/null && apt-get install -y pgbouncer >/dev/null; }
fi
echo "pgbouncer: $(/usr/sbin/pgbouncer --version | head -n1)"
