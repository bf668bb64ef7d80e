#!/bin/sh
# Install Debian's chromium for the browser end-to-end test (tests/test_browser_e2e.py), once.
# Playwright drives this system browser; `playwright install` (a download) is never used.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" chromium
/usr/bin/chromium --version
