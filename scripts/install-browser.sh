#!/bin/sh
# Install Debian's chromium for the browser end-to-end test (tests/test_browser_e2e.py), once.
# Playwright drives this system browser; `playwright install` (a download) is never used.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
/usr/bin/chromium --version
