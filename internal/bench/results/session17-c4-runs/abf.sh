#!/bin/bash
out=$1; pairs=$2; shift 2
mkdir -p $out
for i in $(seq 1 $pairs); do
  for b in "$@"; do
    n=$(basename $b); f=$out/$n-$i.log
    echo "# $(date -u +%T) load $(cat /proc/loadavg) :: $b -scenarios fanout -runs 1" > $f
    $b -scenarios fanout -runs 1 2>&1 | grep -v "level=ERROR" >> $f
    echo "# end $(date -u +%T) load $(cat /proc/loadavg)" >> $f
  done
done
