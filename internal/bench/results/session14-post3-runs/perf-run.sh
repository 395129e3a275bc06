#!/bin/bash
# /tmp/post3-perfab.sh OUT BENCH WSGATE: perf record one saturation run with the wsgate binary; print the shares
OUT=$1; B=$2; W=$3
echo "# $(date -u +%H:%M:%S) load $(cat /proc/loadavg)" > $OUT.log
perf record -F 4999 -g -o $OUT.data -- $B -scenarios post -runs 1 -post-rates 0 -wsgate $W >> $OUT.log 2>&1
