#!/usr/bin/env bash
# Start MariaDB, RabbitMQ, libvirtd and virtlogd when they are installed but not running.
set -uo pipefail
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 "${2:-60}"); do port_open "$1" && return 0; sleep 1; done; return 1; }

start_mariadb() {
  port_open 3306 && return 0
  echo "services: starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null 2>&1 || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null
  wait_port 3306 60 || { echo "services: MariaDB did not start" >&2; return 1; }
}

start_rabbitmq() {
  port_open 5672 && return 0
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port 5672 90 || { echo "services: RabbitMQ did not start" >&2; return 1; }
}

start_libvirt() {
  command -v libvirtd >/dev/null || return 0
  pgrep -x virtlogd >/dev/null || virtlogd -d
  if ! pgrep -x libvirtd >/dev/null; then
    echo "services: starting libvirtd"
    libvirtd -d
    for _ in $(seq 1 30); do [ -S /var/run/libvirt/libvirt-sock ] && break; sleep 1; done
  fi
}

case "${1:-start}" in
  start) start_mariadb; start_rabbitmq; start_libvirt ;;
  *) echo "usage: $0 start" >&2; exit 2 ;;
esac
