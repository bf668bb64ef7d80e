#!/bin/sh
# Install Debian packages for the test set-up (sh scripts/apt-install.sh PACKAGE...), with sudo
# when not root. The install-*.sh scripts call it only when what they need is missing.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$@"
