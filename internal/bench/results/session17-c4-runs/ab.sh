#!/bin/bash
# usage: ab.sh OUTDIR PAIRS bin1 bin2 ...
out=$1; pairs=$2; shift 2
mkdir -p $out
for i in $(seq 1 $pairs); do
  for b in "$@"; do
    n=$(basename $b)
    f=$out/$n-$i.log
    echo "# $(date -u +%T) load $(cat /proc/loadavg) :: $b -cluster 3 -scenarios c-fanout -runs 1" > $f
    $b -cluster 3 -scenarios c-fanout -runs 1 2>&1 | grep -v "level=ERROR" >> $f
    echo "# end $(date -u +%T) load $(cat /proc/loadavg)" >> $f
  done
done
