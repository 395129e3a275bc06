import re,sys,collections
rx=re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) (GoID|ProcID)=(\d+) (\w+)->(\w+)')
ready={}; lat=[]; pidle={}  # proc -> idle since
idlecount=0
t0=None
for line in open(sys.argv[1]):
    m=rx.match(line)
    if not m: continue
    T=int(m.group(4)); 
    if t0 is None: t0=T
    kind=m.group(5); id_=int(m.group(6)); a,b=m.group(7),m.group(8)
    if kind=='ProcID':
        if b=='Idle': pidle[id_]=T
        elif a=='Idle': pidle.pop(id_,None)
        continue
    if a=='Waiting' and b=='Runnable': ready[id_]=(T,len(pidle))
    elif a=='Runnable' and b=='Running' and id_ in ready:
        t,idle=ready.pop(id_); lat.append(((T-t)/1e6,idle,(t-t0)/1e9,id_))
lat.sort()
n=len(lat)
print('wake-ups',n)
for q in (0.5,0.9,0.99,0.999):
    print('p%g %.3f ms'%(q*100,lat[int(q*n)][0]))
print('max',lat[-1])
big=[l for l in lat if l[0]>1]
print('>1ms:',len(big),' of which a P was idle when readied:',sum(1 for l in big if l[1]>0))
for l in lat[-10:]: print('%.2f ms idleP=%d at %.3f s G%d'%l)
