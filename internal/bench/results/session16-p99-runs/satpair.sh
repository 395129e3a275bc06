#!/bin/sh
# satpair.sh TAG N : alternate default and GOGC=100 saturation runs, order swapped each pair
tag=$1; n=$2; i=1
while [ $i -le $n ]; do
  if [ $((i % 2)) -eq 1 ]; then order="def gogc"; else order="gogc def"; fi
  for v in $order; do
    l0=$(cut -d' ' -f1-3 /proc/loadavg)
    if [ $v = gogc ]; then env GOGC=100 /tmp/p99s16/bench-base -scenarios post -post-rates 0 -runs 1 > /tmp/p99s16/runs/$tag-$v-$i.log 2>&1
    else /tmp/p99s16/bench-base -scenarios post -post-rates 0 -runs 1 > /tmp/p99s16/runs/$tag-$v-$i.log 2>&1; fi
    echo "$tag $v $i load $l0 -> $(cut -d' ' -f1-3 /proc/loadavg) $(date +%T)" >> /tmp/p99s16/runs/$tag.loads
  done
  i=$((i+1))
done
