import sys, collections
groups = {'server': collections.Counter(), 'floor': collections.Counter()}
selfu = {'server': collections.Counter(), 'floor': collections.Counter()}
tot = collections.Counter(); ker = collections.Counter()
def flush(comm, stack):
    if not stack: return
    if comm.startswith('wsgate'): g='server'
    elif any('rawLoop' in s for s,k in stack): g='floor'
    else: return
    tot[g]+=1
    if stack[0][1]: ker[g]+=1; 
    else: selfu[g][stack[0][0]]+=1
    seen=set()
    for s,k in stack:
        if s not in seen:
            seen.add(s); groups[g][s]+=1
comm=None; stack=[]
for line in sys.stdin:
    line=line.rstrip('\n')
    if not line:
        flush(comm, stack); comm=None; stack=[]; continue
    if not line.startswith((' ', '\t')):
        comm=line.split()[0]; stack=[]; continue
    parts=line.split(None,1)
    if len(parts)<2: continue
    rest=parts[1]
    sym,_,dso=rest.rpartition(' (')
    sym=sym.split('+0x')[0]
    stack.append((sym, 'kernel' in dso))
flush(comm, stack)
N=int(sys.argv[1])
for g in groups:
    print('==', g, tot[g], 'kernel leaf %.1f%%'%(100*ker[g]/tot[g]))
    print('-- user self')
    for s,c in selfu[g].most_common(N): print('%6.2f%% %s'%(100*c/tot[g],s))
    print('-- inclusive')
    for s,c in groups[g].most_common(N*2): print('%6.2f%% %s'%(100*c/tot[g],s))
