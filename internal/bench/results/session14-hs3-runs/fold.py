#!/usr/bin/env python3
# fold.py PERFDATA COMM which(odd|even|all) topN [FOCUS]: inclusive/self % per symbol (startup excluded);
# FOCUS: the direct callees of FOCUS, inclusive
import subprocess, sys, collections, re
data, comm = sys.argv[1], sys.argv[2]
which = sys.argv[3] if len(sys.argv) > 3 else 'odd'
top = int(sys.argv[4]) if len(sys.argv) > 4 else 80
focus = sys.argv[5] if len(sys.argv) > 5 else None
out = subprocess.run(['perf','script','-i',data,'--comm',comm,'-F','pid,tid,ip,sym','--no-inline'],capture_output=True,text=True).stdout
samples=[]; cur=None
for line in out.split('\n'):
    if not line.strip():
        if cur: samples.append(cur); cur=None
        continue
    if re.match(r"^\s*\d+/\d+\s*$",line):
        m=re.match(r'\s*(\d+)/(\d+)',line)
        cur=(int(m.group(1)),[])
    elif cur:
        parts=line.strip().split(None,1)
        sym=parts[1] if len(parts)>1 else '?'
        sym=re.sub(r'\+0x[0-9a-f]+$','',sym)
        cur[1].append(sym)
if cur: samples.append(cur)
pids=[]
for p,_ in samples:
    if p not in pids: pids.append(p)
if which=='odd': keep=set(pids[0::2])
elif which=='even': keep=set(pids[1::2])
else: keep=set(pids)
incl=collections.Counter(); self_=collections.Counter(); n=0; fc=collections.Counter(); fn=0
excl=0
for p,st in samples:
    if p not in keep: continue
    if 'runtime.main' in st or 'runtime.doInit1' in st or any('execve' in s for s in st):
        excl+=1; continue
    n+=1
    if st: self_[st[0]]+=1
    for s in set(st): incl[s]+=1
    if focus and focus in st:
        fn+=1
        i=st.index(focus)
        fc[st[i-1] if i>0 else '(self)']+=1
print('pids',pids,'kept',sorted(keep),'samples',n,'excluded startup',excl)
if focus:
    print('--- callees of',focus,'(%d samples, %.2f%% of all)'%(fn,100*fn/n))
    for s,c in fc.most_common(top): print('%6.2f%% %s'%(100*c/n,s))
    sys.exit()
print('--- inclusive')
for s,c in incl.most_common(top): print('%6.2f%% %s'%(100*c/n,s))
print('--- self')
for s,c in self_.most_common(top): print('%6.2f%% %s'%(100*c/n,s))
