#!/bin/bash
# /tmp/post3-comb.sh HEADNAME DIR...: over all pairs in DIRs: head lower in µs / ratio / user µs, and medians
H=$1; shift
g() { grep -m1 -F "| $2 |" $1 | awk -F'|' '{print $3}' | sed 's/ //g; s/µs//; s/×//; s/%//'; }
med() { sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
n=0; lu=0; lr=0; luser=0; : > /tmp/post3-comb.b; : > /tmp/post3-comb.h
for D in "$@"; do for hf in $D/post-$H-*.log; do i=${hf##*-}; bf=$D/post-post3-base-$i
  [ -f "$bf" ] || continue
  bw=$(g $bf 'saturation: server CPU per POST'); hw=$(g $hf 'saturation: server CPU per POST')
  br=$(g $bf 'wsgate/floor: saturation: server CPU per POST'); hr=$(g $hf 'wsgate/floor: saturation: server CPU per POST')
  bu=$(echo "$bw*(100-$(g $bf 'saturation: server CPU in the kernel'))/100" | bc -l); hu=$(echo "$hw*(100-$(g $hf 'saturation: server CPU in the kernel'))/100" | bc -l)
  echo "$bw $br $bu" >> /tmp/post3-comb.b; echo "$hw $hr $hu" >> /tmp/post3-comb.h
  n=$((n+1)); [ $(echo "$hw < $bw" | bc) = 1 ] && lu=$((lu+1)); [ $(echo "$hr < $br" | bc) = 1 ] && lr=$((lr+1)); [ $(echo "$hu < $bu" | bc) = 1 ] && luser=$((luser+1))
done; done
echo "pairs $n: head lower in µs $lu, in ratio $lr, in user µs $luser"
for s in b h; do printf "%s medians: µs %s ratio %s user %.2f\n" $s "$(awk '{print $1}' /tmp/post3-comb.$s | med)" "$(awk '{print $2}' /tmp/post3-comb.$s | med)" "$(awk '{print $3}' /tmp/post3-comb.$s | med)"; done
