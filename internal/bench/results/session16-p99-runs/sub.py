import sys, collections
want=sys.argv[1]; root=sys.argv[2]; N=int(sys.argv[3])
inc=collections.Counter(); tot=0; hit=0
def flush(comm, stack):
    global tot, hit
    if not stack: return
    if want=='server':
        if not comm.startswith('wsgate'): return
    elif not any('rawLoop' in s for s in stack): return
    tot+=1
    if root not in stack: return
    hit+=1
    i=stack.index(root)
    for s in set(stack[:i]): inc[s]+=1
comm=None; stack=[]
for line in sys.stdin:
    line=line.rstrip('\n')
    if not line:
        flush(comm, stack); comm=None; stack=[]; continue
    if not line.startswith((' ', '\t')):
        comm=line.split()[0]; stack=[]; continue
    parts=line.split(None,1)
    if len(parts)<2: continue
    stack.append(parts[1].rpartition(' (')[0].split('+0x')[0])
flush(comm, stack)
print(root, '%.2f%% of %d'%(100*hit/tot,tot))
for s,c in inc.most_common(N): print('%6.2f%% %s'%(100*c/tot,s.replace('github.com/wsgate/wsgate/','')))
