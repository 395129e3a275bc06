import sys,re,glob,collections
rows=[]
for f in sorted(glob.glob(sys.argv[1]+'/*.log'), key=lambda p:(int(re.search(r'-(\d+)\.log',p).group(1)), p)):
    t=open(f).read()
    def g(k):
        m=re.search(r'run 1: '+re.escape(k)+r' = ([-\d.e+]+)',t)
        return float(m.group(1)) if m else float('nan')
    load=re.search(r'load ([\d.]+)',t).group(1)
    name=f.split('/')[-1][:-4]
    rows.append((name,load,g('cluster/single: burst deliveries/s'),g('single: burst deliveries/s')/1e3,g('cluster: burst deliveries/s')/1e3,
      g('single: burst: server writes per delivery'),g('cluster: burst: server writes per delivery'),
      g('single: burst: publishing time (first publish to last answer)'),g('cluster: burst: publishing time (first publish to last answer)'),
      g('single: burst: server CPU per delivery (schedstat)'),g('cluster: burst: server CPU per delivery (schedstat)'),
      g('single: burst: clients CPU per delivery (schedstat)'),g('cluster: burst: clients CPU per delivery (schedstat)'),
      g('cluster/single: time to last delivery')))
print('%-10s %5s %6s %6s %6s | wr/d s %5s | pub ms s %5s | srvµs s %5s | cliµs s %5s | ttl'%('run','load','ratio','k/s s','k/s c','c','c','c','c'))
for r in rows: print('%-10s %5s %6.3f %6.0f %6.0f | %6.3f %5.3f | %6.0f %6.0f | %6.3f %5.3f | %6.3f %5.3f | %.3f'%r)
by=collections.defaultdict(list)
for r in rows: by[r[0].rsplit('-',1)[0]].append(r[2])
for k,v in by.items():
    v=sorted(v); print(k,'median ratio %.3f'%v[len(v)//2],'n=',len(v),' '.join('%.3f'%x for x in v))
