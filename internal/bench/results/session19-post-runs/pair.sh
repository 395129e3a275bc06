#!/bin/bash
# pair.sh DIR N BASE HEAD [extra args]: alternate BASE and HEAD, order swapped each pair
dir=$1; n=$2; base=$3; head=$4; shift 4
mkdir -p $dir
for i in $(seq 1 $n); do
  if [ $((i % 2)) -eq 1 ]; then order="base head"; else order="head base"; fi
  for side in $order; do
    bin=$base; [ $side = head ] && bin=$head
    { echo "load before: $(cat /proc/loadavg)"; date -u +%T; } > $dir/$side-$i.log
    $bin -scenarios post -runs 1 -post-rates 0 "$@" >> $dir/$side-$i.log 2>&1
    echo "load after: $(cat /proc/loadavg)" >> $dir/$side-$i.log
  done
done
