import sys,re
for path in sys.argv[1:]:
    lines=open(path).read().split('\n')
    hdr=re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)')
    waiting={}; ws=[]
    for i,l in enumerate(lines):
        m=hdr.match(l)
        if not m: continue
        t=int(m.group(4)); g=int(m.group(5)); a,b=m.group(6),m.group(7)
        if a=='Running' and b=='Waiting':
            blk=' '.join(lines[i+1:i+16])
            if ('WaitGroup).Wait' in blk or 'chanrecv' in blk) and 'Memory).Publish' in blk: waiting[g]=t
        elif a=='Waiting' and b=='Runnable' and g in waiting:
            ws.append((t-waiting.pop(g))/1e6)
    ws.sort()
    print(path.split('/')[-1], 'publish waits n=%d'%len(ws), 'p50 %.2f max %.2f ms'%(ws[len(ws)//2],ws[-1]) if ws else '', 'over 1ms: %d, sum %.1f ms'%(sum(1 for w in ws if w>1),sum(ws)))
