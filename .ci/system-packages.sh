#!/bin/sh
# Installs the Debian packages named in $PACKAGES that are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu
missing=""
for pkg in $PACKAGES; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: not a Debian system; make sure these are installed:$missing" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  echo "Installing Debian packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
else
  echo "error: missing Debian packages. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi
