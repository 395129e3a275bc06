import sys,re
# find the goroutine serving POSTs: label by stack containing 'manage' on its transitions
path=sys.argv[1]
hdr=re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)')
lines=open(path).read().split('\n')
t0=None; evs=[]
for i,l in enumerate(lines):
    if t0 is None and 'Time=' in l: t0=int(re.search(r'Time=(\d+)',l).group(1))
    m=hdr.match(l)
    if not m: continue
    st=' '.join(x.strip().split(' @')[0] for x in lines[i+1:i+40] if x.startswith('\t') and not x.startswith('\t\t'))
    # cut stack at next event
    j=i+1
    blk=[]
    while j<len(lines) and not lines[j].startswith('M='):
        if lines[j].startswith('\t') and not lines[j].startswith('\t\t'): blk.append(lines[j].strip().split(' @')[0])
        j+=1
    evs.append(((int(m.group(4))-t0)/1e6,int(m.group(5)),m.group(6),m.group(7),blk))
# goroutines that ever had 'groups' (manage) in a transition stack
posters=set(g for t,g,a,b,blk in evs if any('Gateway).groups' in x or 'WaitGroup).Wait' in x and 'Publish' in ' '.join(blk) for x in blk) and a=='Running')
print('poster goroutines',posters)
last_ans=None
for t,g,a,b,blk in evs:
    if g not in posters: continue
    top=blk[0] if blk else ''
    if a=='Waiting' and b=='Runnable' and not blk:
        arr=t; print('%8.2f arrive (gap since answer %s)'%(t,'%.2f'%(t-last_ans) if last_ans else '-'))
    elif a=='Runnable' and b=='Running':
        print('%8.2f   running'%t)
    elif a=='Running' and b=='Waiting':
        if 'RawRead' in top or 'waitRead' in ' '.join(blk):
            last_ans=t; print('%8.2f   answered/wait next'%t)
        else: print('%8.2f   blocks: %s'%(t,top))
    elif a=='Waiting' and b=='Runnable':
        print('%8.2f   woken by %s'%(t,top))
