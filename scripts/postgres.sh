# Sourced by scripts/test.sh and scripts/bench.sh: `ensure_local_postgres` installs PostgreSQL if it is missing
# (Debian/Ubuntu, as root), starts the local cluster, makes sure the role `township` (password `township`, allowed
# to create databases) exists, and prints an admin URL for tests and benchmarks. Never used in production.

ensure_local_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing PostgreSQL (apt-get)..." >&2
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    else
      echo "PostgreSQL is not installed: install it, or set TEST_POSTGRES_URL to a server whose user may CREATE DATABASE" >&2
      return 1
    fi
  fi
  local version cluster
  read -r version cluster < <(pg_lsclusters --no-header | awk 'NR==1 {print $1, $2}')
  if [ -z "${version:-}" ]; then
    echo "no PostgreSQL cluster exists; create one with pg_createcluster, or set TEST_POSTGRES_URL" >&2
    return 1
  fi
  if ! pg_ctlcluster "$version" "$cluster" status >/dev/null 2>&1; then
    echo "starting PostgreSQL $version/$cluster..." >&2
    pg_ctlcluster "$version" "$cluster" start >&2
  fi
  local port
  port=$(pg_lsclusters --no-header | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {print $3}')
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 0.5
  done
  pg_isready -q -h 127.0.0.1 -p "$port" || { echo "PostgreSQL did not become ready on port $port" >&2; return 1; }
  runuser -u postgres -- psql -q -p "$port" -v ON_ERROR_STOP=1 >&2 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'township') THEN
    CREATE ROLE township LOGIN CREATEDB PASSWORD 'township';
  END IF;
END $$;
SQL
  echo "postgres://township:township@127.0.0.1:$port/postgres"
}
