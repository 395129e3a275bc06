#!/bin/sh
tag=$1; n=$2; shift 2
i=1
while [ $i -le $n ]; do
  for b in "$@"; do
    name=$(basename $b)
    l0=$(cut -d' ' -f1-3 /proc/loadavg)
    $b -scenarios post -post-rates 5000 -runs 1 -server-fifo > /tmp/p99s16/runs/$tag-$name-$i.log 2>&1
    echo "$tag $name $i load $l0 -> $(cut -d' ' -f1-3 /proc/loadavg) $(date +%T)" >> /tmp/p99s16/runs/$tag.loads
  done
  i=$((i+1))
done
