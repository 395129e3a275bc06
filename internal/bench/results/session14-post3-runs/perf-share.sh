#!/bin/bash
# /tmp/post3-perfshare.sh OUT COMM: µs per POST (children) of chosen functions in the server
OUT=$1; C=$2
cpu=$(grep -m1 -F "| saturation: server CPU per POST |" $OUT.log | awk -F'|' '{print $3}' | sed 's/[^0-9.]//g')
perf report -i $OUT.data --comm $C --children --percentage relative --sort sym --stdio -g none 2>/dev/null | grep -v "^#" > $OUT.children
printf "%s cpu/POST %s | " $(basename $OUT) $cpu
for s in 'runtime.mallocgc$' 'runtime.gcBgMarkWorker$' 'runtime.bgsweep$' 'hub.\(\*Message\).Frame$' 'sigv4.\(\*authInput\).setSignature$' 'runtime.chansend1?$' 'runtime.selectnbsend$' 'runtime.chanrecv1?$' 'sync.\(\*Pool\).Get$' 'sync.\(\*Pool\).Put$' 'gateway.\(\*Gateway\).ServeHTTP$' 'sigv4.\(\*Verifier\).verify$' 'httpfront.parseHeadInto$'; do
  p=$(grep -E " $s| [^ ]*$s" $OUT.children | grep -E "$s" | head -1 | awk '{print $1}' | tr -d '%')
  printf "%s %.3f; " "$(echo $s | sed 's/\\//g; s/\$//; s/.*\.//')" $(echo "${p:-0} * $cpu / 100" | bc -l)
done; echo
