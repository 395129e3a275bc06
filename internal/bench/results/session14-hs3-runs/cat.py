#!/usr/bin/env python3
# cat.py PERFDATA COMM which: user-space samples (leaf not kernel) attributed to the first matching category of the stack (leaf→root order of checks)
import subprocess, sys, collections, re
data, comm, which = sys.argv[1], sys.argv[2], sys.argv[3]
out = subprocess.run(['perf','script','-i',data,'--comm',comm,'-F','pid,ip,sym','--no-inline'],capture_output=True,text=True).stdout
samples=[]; cur=None
for line in out.split('\n'):
    if not line.strip():
        if cur: samples.append(cur); cur=None
        continue
    m=re.match(r"^\s*(\d+)\s*$",line)
    if m: cur=(int(m.group(1)),[]); continue
    if cur is not None:
        parts=line.strip().split(None,1)
        addr=parts[0]; sym=parts[1] if len(parts)>1 else '?'
        cur[1].append((addr.startswith('ffffffff'), re.sub(r'\+0x[0-9a-f]+$','',sym)))
if cur: samples.append(cur)
pids=[]
for p,_ in samples:
    if p not in pids: pids.append(p)
keep=set(pids[0::2]) if which=='odd' else set(pids[1::2]) if which=='even' else set(pids)
cats=[('startup',['runtime.main','runtime.doInit1']),
 ('gc',['runtime.gcBgMarkWorker','runtime.gcAssistAlloc','runtime.bgsweep','runtime.bgscavenge','runtime.gcStart']),
 ('sched',['runtime.mcall','runtime.schedule','runtime.findRunnable','runtime.park_m','runtime.goready','runtime.ready','runtime.wakep','runtime.notewakeup','runtime.futexwakeup','runtime.startm','runtime.mstart','runtime.gopark','runtime.newproc']),
 ('pagefault',['asm_exc_page_fault']),
 ('malloc',['runtime.mallocgc','runtime.newobject','runtime.makeslice','runtime.growslice']),
 ('register',['github.com/wsgate/wsgate/hub.(*Memory).Register']),
 ('ids',['github.com/wsgate/wsgate/hub.NewIDPair']),
 ('parse',['github.com/wsgate/wsgate/httpfront.parseHeadInto']),
 ('syscall',['entry_SYSCALL_64_after_hwframe']),
]
kern=collections.Counter(); user=collections.Counter(); uleaf=collections.Counter(); n=0
for p,st in samples:
    if p not in keep: continue
    names=[s for _,s in st]
    if 'runtime.main' in names or 'runtime.doInit1' in names or any('execve' in s for s in names): continue
    n+=1
    c='other'
    for name,keys in cats:
        if any(k in names for k in keys): c=name; break
    if st and st[0][0]: kern[c]+=1
    else:
        user[c]+=1
        if c=='other': uleaf[names[0] if names else '?']+=1
print('samples',n,'kernel-leaf %.1f%%'%(100*sum(kern.values())/n))
for c in sorted(set(kern)|set(user), key=lambda c:-(kern[c]+user[c])):
    print('%-10s total %5.1f%%  user %5.1f%%  kernel %5.1f%%'%(c,100*(kern[c]+user[c])/n,100*user[c]/n,100*kern[c]/n))
print('--- user leaves in other')
for s,c in uleaf.most_common(40): print('%5.2f%% %s'%(100*c/n,s))
