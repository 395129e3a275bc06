#!/bin/bash
# /tmp/post3-sendshare.sh OUT COMM: µs per POST (self) of the send path's functions
OUT=$1; C=$2
cpu=$(grep -m1 -F "| saturation: server CPU per POST |" $OUT.log | awk -F'|' '{print $3}' | sed 's/[^0-9.]//g')
perf report -i $OUT.data --comm $C --no-children --percentage relative --sort sym --stdio -g none 2>/dev/null | grep -v "^#" > $OUT.self
printf "%s cpu/POST %s | " $(basename $OUT) $cpu
t=0
for s in 'gateway.\(\*conn\).sendKept$' 'gateway.\(\*conn\).writeOrQueueLocked$' 'gateway.\(\*conn\).writeInline$' 'gateway.\(\*conn\).admitLocked$' 'gateway.\(\*conn\).sendData$' 'hub.\(\*Memory\).conn$' 'gateway.\(\*conn\).Send$' 'gateway.\(\*conn\).send$'; do
  p=$(grep -E "$s" $OUT.self | head -1 | awk '{print $1}' | tr -d '%')
  v=$(echo "${p:-0} * $cpu / 100" | bc -l); t=$(echo "$t + $v" | bc -l)
  printf "%s %.3f; " "$(echo $s | sed 's/\\//g; s/\$//; s/.*\.//')" $v
done; printf "sum %.3f\n" $t
