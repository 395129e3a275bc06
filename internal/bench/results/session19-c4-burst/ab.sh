#!/bin/bash
# usage: ab.sh OUTDIR PAIRS build1 build2 ...  (alternating, one run each, load noted)
out=$1; pairs=$2; shift 2
mkdir -p $out
for i in $(seq 1 $pairs); do
  for b in "$@"; do
    n=$(basename $b)
    l=$(cut -d' ' -f1-3 /proc/loadavg)
    $b -cluster 3 -scenarios c-fanout -runs 1 > $out/$n-$i.log 2>&1
    r=$(grep "cluster/single: burst deliveries/s =" $out/$n-$i.log | sed 's/.*= //')
    echo "$i $n load=[$l] ratio=$r" | tee -a $out/summary.txt
  done
done
