import sys, re, subprocess, collections
# perf script → per-sample stacks; classify.
def samples(f):
    out = subprocess.run(["perf","script","-i",f,"-F","pid,tid,ip,sym,dso"],capture_output=True,text=True).stdout
    cur=None
    for line in out.split("\n"):
        if not line.strip():
            if cur: yield cur
            cur=None; continue
        if not line.startswith(("\t"," ")) or (cur is None):
            cur={"hdr":line.strip(),"fr":[]}
            continue
        parts=line.strip().split(None,1)
        if len(parts)<2: continue
        rest=parts[1]
        m=re.match(r"(.*) \((.*)\)$",rest)
        sym,dso=(m.group(1),m.group(2)) if m else (rest,"")
        sym=re.sub(r"\+0x[0-9a-f]+$","",sym)
        cur["fr"].append((sym,dso))
    if cur: yield cur

def root(fr):
    # outermost meaningful Go frame
    gos=[s for s,d in fr if "kernel" not in d and s!="[unknown]"]
    for s in reversed(gos):
        if s in ("runtime.goexit.abi0","runtime.goexit","runtime.main","runtime.rt0_go.abi0","runtime.mstart","runtime.mstart0","runtime.mstart1","runtime.mstart.abi0","runtime.systemstack.abi0","runtime.mcall","runtime.asmcgocall.abi0"): continue
        return s
    return gos[-1] if gos else "(kernel only)"

def cat(fr):
    syms=[s for s,d in fr]
    j=" ".join(syms)
    def has(*k): return any(x in j for x in k)
    if has("runtime.gcBgMarkWorker","runtime.gcDrain","runtime.bgsweep","runtime.bgscavenge","gcAssist"): return "GC"
    if has("runtime.osyield","sched_yield","do_sched_yield"): return "sched_yield (flusher)"
    if has("runtime.findRunnable","runtime.schedule","runtime.park_m","runtime.stopm","runtime.mPark","runtime.goschedImpl","runtime.gopreempt_m","runtime.exitsyscall","runtime.entersyscall","runtime.startm","runtime.wakep","runtime.ready","runtime.goready","runtime.notewakeup","runtime.futexwakeup","runtime.futexsleep","runtime.usleep","runtime.sysmon","runtime.retake","runtime.netpoll"):
        for k in ("runtime.netpoll","runtime.futexsleep","runtime.futexwakeup","runtime.usleep","runtime.sysmon","runtime.exitsyscall","runtime.entersyscall","runtime.findRunnable","runtime.wakep","runtime.ready"):
            if k in j: return "runtime sched: "+k
        return "runtime sched: other"
    if has("nats-io","nats-server","nats.go"): return "NATS"
    if has("gateway.writev","gateway.writeNow","(*conn).flush","sys_writev","do_writev"): return "socket write (flusher/writer)"
    if has("fanBlock","SendBlock","hub.(*Memory).Publish","Publish"): return "publish: queue frames"
    if has("net/http","httpfront","sigv4"): return "HTTP / POST"
    if has("mallocgc"): return "alloc"
    if has("do_epoll_wait","ep_poll"): return "epoll (other)"
    if has("futex"): return "futex (other)"
    if has("tcp_v4_rcv","net_rx_action","do_softirq","__netif_receive"): return "softirq rx"
    return "other: "+(syms[0] if syms else "?")

f=sys.argv[1]
cats=collections.Counter(); roots=collections.Counter(); n=0
procs=collections.Counter()
for s in samples(f):
    fr=s["fr"]; n+=1
    cats[cat(fr)]+=1; roots[root(fr)]+=1
    procs[s["hdr"].split()[0].split("/")[0]]+=1
print(f, "samples",n, "procs",dict(procs))
for k,v in cats.most_common(25): print(f"  {100*v/n:5.1f}%  {k}")
print(" roots:")
for k,v in roots.most_common(12): print(f"  {100*v/n:5.1f}%  {k}")
