#!/bin/bash
# one line per log: ratio, single/cluster burst, publishing, writes/delivery, server CPU/delivery (schedstat)
for f in "$@"; do
  g() { grep "run 1: $1" $f | head -1 | sed 's/.*= //; s/ .*//'; }
  printf "%-22s ratio=%-6s sb=%-9s cb=%-9s pub=%s/%s w=%s/%s cpu=%s/%s ccpu=%s/%s\n" $(basename $f .log) \
   "$(g 'cluster/single: burst deliveries/s')" "$(g 'single: burst deliveries/s')" "$(g 'cluster: burst deliveries/s')" \
   "$(g 'single: burst: publishing')" "$(g 'cluster: burst: publishing')" \
   "$(g 'single: burst: server writes per')" "$(g 'cluster: burst: server writes per')" \
   "$(g 'single: burst: server CPU per delivery (sched')" "$(g 'cluster: burst: server CPU per delivery (sched')" \
   "$(g 'single: burst: clients CPU per delivery (sched')" "$(g 'cluster: burst: clients CPU per delivery (sched')"
done
