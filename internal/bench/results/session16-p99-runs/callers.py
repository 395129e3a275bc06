import sys, collections
want=sys.argv[1]; target=sys.argv[2]; depth=int(sys.argv[3])
c=collections.Counter(); tot=0; hit=0
def flush(comm, stack):
    global tot, hit
    if not stack: return
    if want=='server':
        if not comm.startswith('wsgate'): return
    elif not any('rawLoop' in s for s in stack): return
    tot+=1
    for i,s in enumerate(stack):
        if s==target:
            hit+=1
            c[' <- '.join(x.replace('github.com/wsgate/wsgate/','') for x in stack[i+1:i+1+depth])]+=1
            break
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
print(target, 'in %.2f%% of %d'%(100*hit/tot, tot))
for s,n in c.most_common(25): print('%6.2f%% %s'%(100*n/tot, s))
