#!/bin/sh
# Writes PgBouncer's auth_file from the environment (so the password lives in
# one place, the compose variables), then runs PgBouncer in the foreground.
set -eu
: "${PGBOUNCER_USER:?PGBOUNCER_USER must be set}"
: "${PGBOUNCER_PASSWORD:?PGBOUNCER_PASSWORD must be set}"
case $PGBOUNCER_USER$PGBOUNCER_PASSWORD in
  *'"'*) echo 'pgbouncer: PGBOUNCER_USER and PGBOUNCER_PASSWORD must not contain "' >&2; exit 2 ;;
esac
umask 077
printf '"%s" "%s"\n' "$PGBOUNCER_USER" "$PGBOUNCER_PASSWORD" >/run/pgbouncer/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
