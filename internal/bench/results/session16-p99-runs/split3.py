import sys, collections
want=sys.argv[1]; N=int(sys.argv[2])
inc=collections.Counter(); selfc=collections.Counter(); tot=0; kept=0
def flush(comm, stack):
    global tot, kept
    if not stack: return
    if want=='server':
        if not comm.startswith('wsgate'): return
    elif not any('rawLoop' in s for s in stack): return
    tot+=1
    if any(s in ('do_syscall_64','github.com/wsgate/wsgate/sigv4.(*Verifier).verify') for s in stack): return
    kept+=1
    selfc[stack[0]]+=1
    for s in set(stack): inc[s]+=1
comm=None; stack=[]
for line in sys.stdin:
    line=line.rstrip('\n')
    if not line:
        flush(comm, stack); comm=None; stack=[]; continue
    if not line.startswith((' ', '\t')):
        comm=line.split()[0]; stack=[]; continue
    parts=line.split(None,1)
    if len(parts)<2: continue
    sym=parts[1].rpartition(' (')[0].split('+0x')[0]
    stack.append(sym)
flush(comm, stack)
print('total', tot, 'outside syscalls and verify', kept, '%.1f%%'%(100*kept/tot))
for s,c in inc.most_common(N): print('%6.2f%% %s'%(100*c/tot,s))
print('-- self')
for s,c in selfc.most_common(N): print('%6.2f%% %s'%(100*c/tot,s))
