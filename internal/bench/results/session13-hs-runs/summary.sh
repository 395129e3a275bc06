#!/bin/bash
for f in "$@"; do
  g() { grep -m1 "$1" $f | awk -F'= ' '{print $2}' | awk '{print $1}'; }
  l=$(head -1 $f | sed 's/.*load \([0-9.]*\) .*/\1/')
  echo "$(basename $f | sed 's/handshake,post,route-//') load=$l hs=$(g 'run 1: no \$connect: wsgate: server CPU per handshake') fl=$(g 'run 1: no \$connect: floor (raw): server CPU per handshake') r=$(g 'run 1: no \$connect: wsgate/floor (raw)') conn=$(g 'run 1: http \$connect: wsgate: server CPU per handshake') cfl=$(g 'run 1: http \$connect: floor (raw): server CPU per handshake') post=$(g 'run 1: saturation: server CPU per POST') pfl=$(g 'run 1: floor: saturation: server CPU per POST') pr=$(g 'run 1: wsgate/floor: saturation') p99=$(g 'post run 1: 5000/s: p99 =') fp99=$(g 'post run 1: floor: 5000/s: p99 =') route=$(g 'route run 1: saturation: server CPU per message')"
done
