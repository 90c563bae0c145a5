#!/usr/bin/env bash
# psql's \copy of the rows an import wrote, into the same tables (partitions, indexes, foreign
# keys, change-capture triggers) of a fresh database: the baseline of docs/benchmarks.md's
# import section, by hand. Usage, after `revisit-bench import` on PostgreSQL database SRC:
#   bench/psql-copy.sh SRC
# It makes (and leaves) the database SRC_copy and prints rows/s per file record.
set -euo pipefail
SRC=${1:?the database revisit-bench import wrote}; DST=${SRC}_copy
BIN=${REVISIT_BENCH:-$(dirname "$0")/../target/release/revisit-bench}
P="psql -h 127.0.0.1 -U postgres -qAt"
D=/tmp/copydata; rm -rf $D; mkdir -p $D; chmod 777 $D
declare -A COLS
for t in institutions persons customers consumption_records consumption_items; do
  COLS[$t]=$($P -d $SRC -c "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema='public' AND table_name='$t' AND is_generated='NEVER'")
  $P -d $SRC -c "\\copy (SELECT ${COLS[$t]} FROM $t) TO '$D/$t.csv' WITH (FORMAT csv)"
done
$P -d postgres -c "DROP DATABASE IF EXISTS $DST WITH (FORCE)"
DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DST $BIN revisit init --skip-clickhouse --skip-graph >/dev/null
$P -d $DST -c "\\copy institutions (${COLS[institutions]}) FROM '$D/institutions.csv' WITH (FORMAT csv)"
$P -d $DST -c "CHECKPOINT"
t() { local s=$(date +%s.%N); $P -d $DST -c "\\copy $1 (${COLS[$1]}) FROM '$D/$1.csv' WITH (FORMAT csv)"; echo "$(date +%s.%N) - $s" | bc; }
tp=$(t persons); tc=$(t customers); tr=$(t consumption_records); ti=$(t consumption_items)
nc=$(wc -l < $D/customers.csv); no=$(wc -l < $D/consumption_records.csv)
echo "persons ${tp}s customers ${tc}s records ${tr}s items ${ti}s"
echo "customers file: $nc customers in $(echo "$tp + $tc" | bc) s = $(echo "$nc / ($tp + $tc)" | bc) customers/s (rows: $(echo "2*$nc / ($tp + $tc)" | bc)/s)"
ni=$(wc -l < $D/consumption_items.csv)
echo "orders file: $no orders ($ni items) in $(echo "$tr + $ti" | bc) s = $(echo "$no / ($tr + $ti)" | bc) orders/s (rows: $(echo "($no+$ni) / ($tr + $ti)" | bc)/s)"
$P -d $DST -c "SELECT count(*) FROM changes" 2>/dev/null || true
