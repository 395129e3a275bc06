import sys,re,glob,statistics as st
def val(t,k):
    m=re.search(r'run 1: '+re.escape(k)+r' = ([-\d.e+]+)',t); return float(m.group(1)) if m else None
keys=[('ratio','cluster/single: burst deliveries/s'),('single k/s','single: burst deliveries/s'),('cluster k/s','cluster: burst deliveries/s'),
('wr/d single','single: burst: server writes per delivery'),('wr/d cluster','cluster: burst: server writes per delivery'),
('rd/d cli single','single: burst: clients reads per delivery'),('rd/d cli cluster','cluster: burst: clients reads per delivery'),
('pub ms single','single: burst: publishing time (first publish to last answer)'),('pub ms cluster','cluster: burst: publishing time (first publish to last answer)'),
('srv µs single','single: burst: server CPU per delivery (schedstat)'),('srv µs cluster','cluster: burst: server CPU per delivery (schedstat)'),
('cli µs single','single: burst: clients CPU per delivery (schedstat)'),('cli µs cluster','cluster: burst: clients CPU per delivery (schedstat)'),
('srv vol/1k single','single: burst: server voluntary switches per 1,000 deliveries'),('srv vol/1k cluster','cluster: burst: server voluntary switches per 1,000 deliveries'),
('srv invol/1k single','single: burst: server involuntary switches per 1,000 deliveries'),('srv invol/1k cluster','cluster: burst: server involuntary switches per 1,000 deliveries'),
('cli vol/1k single','single: burst: clients voluntary switches per 1,000 deliveries'),('cli vol/1k cluster','cluster: burst: clients voluntary switches per 1,000 deliveries'),
('ttl ratio','cluster/single: time to last delivery')]
groups={}
for pat in sys.argv[1:]:
    name,globp=pat.split('=')
    fs=[f for g in globp.split(',') for f in glob.glob(g)]
    groups[name]=[open(f).read() for f in fs]
print('%-22s'%'figure', ' '.join('%-34s'%n for n in groups))
for lab,k in keys:
    row=[]
    for n,ts in groups.items():
        v=sorted(x for x in (val(t,k) for t in ts) if x is not None)
        if not v: row.append('-'); continue
        sc=1e3 if 'k/s' in lab else 1
        row.append('%8.3f [%7.3f–%7.3f] n=%d'%(st.median(v)/sc,v[0]/sc,v[-1]/sc,len(v)))
    print('%-22s'%lab,' '.join('%-34s'%r for r in row))
loads={n:[float(re.search(r'load ([\d.]+)',t).group(1)) for t in ts] for n,ts in groups.items()}
for n,l in loads.items(): print(n,'load at start %.1f–%.1f'%(min(l),max(l)))
