#!/bin/bash
# summary.sh DIR: per run: CPU per POST, kernel share, user µs, floor, ratio, load
dir=$1
for f in $(ls $dir/*.log | sort -t- -k2 -n); do
  cpu=$(grep -m1 "run 1: saturation: server CPU per POST" $f | awk '{print $(NF-1)}')
  k=$(grep -m1 "run 1: saturation: server CPU in the kernel" $f | awk '{print $(NF-1)}')
  fl=$(grep -m1 "run 1: floor: saturation: server CPU per POST" $f | awk '{print $(NF-1)}')
  r=$(grep -m1 "wsgate/floor: saturation: server CPU per POST" $f | awk '{print $(NF-1)}')
  rate=$(grep -m1 "| saturation: verified POST/s" $f | awk -F'|' '{print $3}')
  ld=$(grep -m1 "load before" $f | awk '{print $3}')
  u=$(python3 -c "print('%.2f' % ($cpu*(1-$k/100)))" 2>/dev/null)
  echo "$(basename $f .log) cpu=$cpu kernel=$k% user=$u floor=$fl ratio=$r rate=$rate load=$ld $(sed -n 2p $f)"
done
