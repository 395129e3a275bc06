import sys,re,collections
path=sys.argv[1]; bucket=float(sys.argv[2]) if len(sys.argv)>2 else 5
hdr=re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)')
t0=None; writes=collections.Counter(); pubs=[]; nxt=None
lines=open(path).read().split('\n')
for i,l in enumerate(lines):
    if t0 is None and l.startswith('M='):
        t0=int(re.search(r'Time=(\d+)',l).group(1))
    m=hdr.match(l)
    if not m: continue
    t=(int(m.group(4))-t0)/1e6
    if m.group(6)=='Running' and m.group(7)=='Syscall':
        st=' '.join(lines[i+1:i+22])
        if 'writeNow' in st or 'flush' in st: writes[int(t//bucket)]+=1
    # group worker / http waking a flusher? record publish: NotExist->Runnable of flusher or Publish.func
    if m.group(6)=='Waiting' and m.group(7)=='Runnable':
        st=' '.join(lines[i+1:i+6])
        if 'selectnbsend' in st and 'Conn).processMsg' in ' '.join(lines[i+1:i+20]): pubs.append(t)
ks=sorted(writes)
tot=sum(writes.values())
print('writes total',tot)
for k in range(ks[0],ks[-1]+1):
    print('%6.0f ms %5d %s'%(k*bucket,writes.get(k,0),'#'*(writes.get(k,0)//20)))
