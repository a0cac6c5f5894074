#!/usr/bin/env bash
# Make sure the local PostgreSQL and MariaDB the tests use are up, and that their test
# databases exist. Safe to run any number of times.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
my_up() { mysqladmin -uroot -h 127.0.0.1 status >/dev/null 2>&1; }

if ! pg_up; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! my_up; then
    echo "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
for _ in $(seq 1 60); do
    pg_up && my_up && break
    sleep 1
done
pg_up || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
my_up || { echo "MariaDB did not come up on 127.0.0.1:3306" >&2; exit 1; }

for db in stalwart_test stalwart_test_gw0 stalwart_test_gw1 stalwart_test_gw2 stalwart_test_gw3 stalwart_bench; do
    if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
        psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
    fi
    mysql -uroot -h 127.0.0.1 -e "CREATE DATABASE IF NOT EXISTS $db"
done
echo "PostgreSQL and MariaDB are up; test databases exist."
