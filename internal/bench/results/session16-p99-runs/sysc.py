import collections,re,sys
c=collections.Counter()
comm=None; nr=None; a=None; stack=[]
def flush():
    if comm and comm.startswith('wsgate') and nr=='281':
        t=int(a[3],16)
        cls='0' if t==0 else ('-1' if t>=0xffffffff else 'pos')
        fr=[s for s in stack if (s.startswith('runtime.') or 'wsgate' in s) and s not in ('runtime.netpoll',)]
        c[('epoll'+cls,' <- '.join(fr[:3]))]+=1
    if comm and comm.startswith('wsgate') and nr in ('202','233','72','35'):
        fr=[s.replace('github.com/wsgate/wsgate/','') for s in stack if s.startswith(('runtime.','internal','git','os.','syscall.'))]
        c[(nr+' '+(a[1] if nr=='202' else ''),' <- '.join(fr[:7]))]+=1
for line in open(sys.argv[1]):
    line=line.rstrip('\n')
    if not line:
        flush(); comm=None; stack=[]; continue
    if not line.startswith((' ','\t')):
        m=re.match(r'(\S+) NR (\d+) \(([^)]*)\)',line)
        if m: comm,nr,a=m.group(1),m.group(2),[x.strip() for x in m.group(3).split(',')]
        else: comm=None
        stack=[]; continue
    parts=line.split(None,1)
    if len(parts)==2:
        s=parts[1]
        if ' (' in s: s=s.rpartition(' (')[0]
        stack.append(s.split('+0x')[0])
flush()
for k,v in c.most_common(45): print(v,k)
