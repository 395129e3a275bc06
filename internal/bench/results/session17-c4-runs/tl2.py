import sys, re, collections
path=sys.argv[1]
ev=[]; cur=None; sect=None
hdr=re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(\d+)(.*)$')
with open(path) as f:
    for line in f:
        m=hdr.match(line)
        if m:
            M,P,G,kind,t,rest=m.groups()
            cur={'t':int(t),'kind':kind,'P':int(P),'G':int(G),'rest':rest,'ts':[],'st':[]}
            ev.append(cur); sect=None; continue
        s=line.strip()
        if s=='TransitionStack=': sect='ts'; continue
        if s=='Stack=': sect='st'; continue
        if cur is not None and sect and s and not s.startswith('/'):
            cur[sect].append(s.split(' @')[0])
PAT=[('flusher).run','flush'),('(*Conn).readLoop','natsRead'),('(*Conn).flusher','natsFlush'),
     ('Publish.func2','pubHelper'),('startGroups.func1','grpWorker'),('(*client).writeLoop','srvWrite'),
     ('(*client).readLoop','srvRead'),('ServeHTTP','http'),('(*conn).writeLoop','wsWriter'),('httpfront','front'),('readTurn','readTurn')]
def lab(stack):
    j=' '.join(stack)
    for k,v in PAT:
        if k in j: return v
    return None
labels={}
tr=re.compile(r'GoID=(\d+) (\w+)->(\w+)')
for e in ev:
    if e['kind']!='StateTransition': continue
    m=tr.search(e['rest'])
    if not m: continue
    g=int(m.group(1)); e['g']=g; e['frm']=m.group(2); e['to']=m.group(3)
    if e['ts']:
        l=lab(e['ts'])
        if l: labels.setdefault(g,l)
    if e['frm']=='NotExist' and e['st']:
        pass
t0=ev[0]['t']
runnable_at={}; running_at={}
delays=collections.defaultdict(list); busy=collections.defaultdict(float)
for e in ev:
    if 'g' not in e: continue
    g=e['g']; t=e['t']; L=labels.get(g,'?')
    if e['to']=='Runnable': runnable_at[g]=t
    if e['to']=='Running':
        if e['frm']=='Runnable' and g in runnable_at:
            delays[L].append((t-runnable_at.pop(g))/1e3)
        running_at[g]=t
    if e['frm']=='Running' and g in running_at:
        busy[L]+=(t-running_at.pop(g))/1e6
print('labels',dict(collections.Counter(labels.values())))
for k,v in sorted(delays.items()):
    v.sort(); print('%-10s n=%4d runnable->running us: p50=%.0f p90=%.0f max=%.0f sum=%.1fms'%(k,len(v),v[len(v)//2],v[int(len(v)*.9)],v[-1],sum(v)/1e3))
for k,v in sorted(busy.items()): print('%-10s running(excl syscalls) ms %.1f'%(k,v))
if len(sys.argv)>2:
    want=sys.argv[2].split(',')
    for e in ev:
        if 'g' not in e: continue
        L=labels.get(e['g'],'?')
        if L in want and not (e['frm'] in('Running','Syscall') and e['to'] in ('Running','Syscall')):
            print('%8.3f g%-5d %-9s %s->%s %s'%((e['t']-t0)/1e6,e['g'],L,e['frm'],e['to'],(e['ts'][0] if e['ts'] else ('by '+e['st'][0] if e['st'] else ''))))
