#!/bin/bash
# /tmp/post3-sum.sh DIR A B: per pair, A's and B's server CPU per POST / floor's = ratio, user µs (wsgate/floor), load; then medians
D=$1; A=$2; B=$3
g() { grep -m1 -F "| $2 |" $1 | awk -F'|' '{print $3}' | sed 's/ //g; s/µs//; s/×//; s/%//'; }
med() { sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
n=$(ls $D/post-$A-*.log | wc -l)
for i in $(seq 1 $n); do
  for b in $A $B; do f=$D/post-$b-$i.log
    w=$(g $f 'saturation: server CPU per POST'); fl=$(g $f 'floor: saturation: server CPU per POST')
    wk=$(g $f 'saturation: server CPU in the kernel'); fk=$(g $f 'floor: saturation: server CPU in the kernel')
    wu=$(echo "$w * (100 - $wk) / 100" | bc -l); fu=$(echo "$fl * (100 - $fk) / 100" | bc -l)
    printf "%s-%d %s/%s=%s user %.2f/%.2f load %s | " $b $i $w $fl "$(g $f 'wsgate/floor: saturation: server CPU per POST')" $wu $fu "$(head -1 $f | awk '{print $4}')"
  done; echo
done
for b in $A $B; do
  printf "%s median: post %s floor %s ratio %s user %s\n" $b \
   "$(for f in $D/post-$b-*.log; do g $f 'saturation: server CPU per POST'; done | med)" \
   "$(for f in $D/post-$b-*.log; do g $f 'floor: saturation: server CPU per POST'; done | med)" \
   "$(for f in $D/post-$b-*.log; do g $f 'wsgate/floor: saturation: server CPU per POST'; done | med)" \
   "$(for f in $D/post-$b-*.log; do w=$(g $f 'saturation: server CPU per POST'); wk=$(g $f 'saturation: server CPU in the kernel'); echo "$w * (100 - $wk) / 100" | bc -l; done | med)"
done
