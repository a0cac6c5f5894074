#!/usr/bin/env bash
# tests/test_clock.py runs supervisors whose wall clocks lie (120 s ahead and behind)
# with Debian's libfaketime. Safe to run any number of times: does nothing when it is
# there.
set -euo pipefail

if [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || [ -n "$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null)" ]; then
    exit 0
fi
echo "installing faketime (Debian package) for the clock tests"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq faketime >/dev/null
