#!/usr/bin/env bash
# Set up a Debian 12 machine for nova-twisted: Debian packages when missing,
# the services tests use (started if installed but not running), and the
# virtualenv with the project installed. Usage: tools/setup.sh run|test
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
want() { for p in "$@"; do have_pkg "$p" || need+=("$p"); done; }

"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || want python3-venv
want pkg-config gcc
if [ "$mode" = test ]; then
  want mariadb-server rabbitmq-server amqp-specs \
       libvirt-daemon-system libvirt-dev qemu-system-x86 qemu-utils \
       busybox-static linux-image-cloud-amd64 cpio \
       openssh-client wrk
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "$mode" = test ]; then
  tools/services.sh start
fi

stamp="$VENV/.installed-$(cat setup.py pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -U pip setuptools wheel 2>&1 | grep -v '^WARNING: Location' || true
  extras="test,bench"
  if pkg-config --exists libvirt 2>/dev/null; then extras="$extras,libvirt"; fi
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[$extras]" \
      --config-settings editable_mode=compat 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -c 'import nova_twisted, twisted, txamqp, sqlalchemy' # fail loudly if the install did not work
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
# Our own bytecode, once: every daemon, nova-manage and CLI test process would compile it again
# (PYTHONDONTWRITEBYTECODE keeps Python from writing it); stale files are simply recompiled in memory.
"$VENV/bin/python" -m compileall -q nova_twisted plugins twisted/plugins >/dev/null || true
