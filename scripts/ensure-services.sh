#!/usr/bin/env bash
# Makes sure the services that labrunner's tests use for real are installed and
# running on this machine: PostgreSQL, MariaDB and RabbitMQ. Installs missing
# ones with apt-get (Debian) and starts stopped ones without systemd, so that it
# works on a fresh CI machine and in containers alike. Idempotent.
set -euo pipefail

log() { echo "ensure-services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2 deadline=$((SECONDS + 180))
  until port_open "$port"; do
    if ((SECONDS > deadline)); then
      log "$name did not start listening on 127.0.0.1:$port within 180 s"
      exit 1
    fi
    sleep 1
  done
}

apt_updated=0
apt_install() {
  if ((apt_updated == 0)); then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# PostgreSQL: trust on loopback, as the tests connect as postgres without a password.
fresh_pg=0
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  apt_install postgresql
  fresh_pg=1
fi
pgver=$(ls /etc/postgresql | sort -V | tail -n 1)
if ((fresh_pg)); then
  hba=/etc/postgresql/$pgver/main/pg_hba.conf
  sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
fi
if ! port_open 5432; then
  log "starting PostgreSQL $pgver"
  pg_ctlcluster --skip-systemctl-redirect "$pgver" main start
fi

# MariaDB: root without a password over TCP.
fresh_maria=0
if [ ! -x /usr/sbin/mariadbd ]; then
  apt_install mariadb-server
  fresh_maria=1
fi
if ! port_open 3306; then
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi

# RabbitMQ with its default guest/guest user (allowed from loopback).
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  apt_install rabbitmq-server
fi
if ! port_open 5672; then
  log "starting RabbitMQ"
  rabbitmq-server -detached
fi

wait_port PostgreSQL 5432
wait_port MariaDB 3306
wait_port RabbitMQ 5672

if ((fresh_maria)); then
  mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;" || true
fi
log "PostgreSQL, MariaDB and RabbitMQ are running"
