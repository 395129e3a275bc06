#!/bin/bash
g() { grep -m1 -F "| $2 |" $1 | awk -F'|' '{print $3}' | sed 's/ //g'; }
for f in "$@"; do
 printf "%-12s hs %s raw %s (%s) | conn %s rawc %s | post %s floor %s (%s) | p99 %s floor %s warm %s | fawr %s\n" $(basename $f .log) \
 "$(g $f 'no $connect: wsgate: server CPU per handshake')" "$(g $f 'no $connect: floor (raw): server CPU per handshake')" "$(g $f 'no $connect: wsgate/floor (raw): server CPU per handshake')" \
 "$(g $f 'http $connect: wsgate: server CPU per handshake')" "$(g $f 'http $connect: floor (raw): server CPU per handshake')" \
 "$(g $f 'saturation: server CPU per POST')" "$(g $f 'floor: saturation: server CPU per POST')" "$(g $f 'wsgate/floor: saturation: server CPU per POST')" \
 "$(g $f '5000/s: p99')" "$(g $f 'floor: 5000/s: p99')" "$(g $f '5000/s: warm-up (1 s): p99')" "$(g $f '5000/s: frame after the write: p99')"
done
