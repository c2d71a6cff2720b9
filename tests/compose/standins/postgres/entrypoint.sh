#!/bin/sh
# The stand-in's entrypoint, after the official image's: as root, own the data directory
# and drop to postgres; on an empty PGDATA, initdb with POSTGRES_USER and POSTGRES_PASSWORD
# and create POSTGRES_DB; then run the server on every interface.
set -eu
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" > "$pw"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pw" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pw"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    if [ "${POSTGRES_DB:-$POSTGRES_USER}" != postgres ]; then
        psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
            -c "CREATE DATABASE \"${POSTGRES_DB:-$POSTGRES_USER}\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec postgres -D "$PGDATA"
