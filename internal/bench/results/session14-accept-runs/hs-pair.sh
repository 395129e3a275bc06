#!/bin/bash
# /tmp/hs-pair.sh OUTDIR PAIRS SCEN A B [extra args]: alternate A and B (swap order each pair)
OUT=$1; N=$2; SC=$3; A=$4; B=$5; shift 5
mkdir -p $OUT
for i in $(seq 1 $N); do
  if [ $((i%2)) = 1 ]; then order="$A $B"; else order="$B $A"; fi
  for bin in $order; do
    n=$(basename $bin)
    { echo "# $(date -u +%H:%M:%S) load $(cat /proc/loadavg) :: $bin -scenarios $SC -runs 1 $*"; $bin -scenarios $SC -runs 1 "$@"; echo "# end $(date -u +%H:%M:%S) load $(cat /proc/loadavg)"; } > $OUT/$SC-$n-$i.log 2>&1
  done
done
