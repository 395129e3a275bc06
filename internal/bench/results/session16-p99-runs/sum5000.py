import sys,re
for fn in sys.argv[1:]:
    d={}
    for line in open(fn):
        m=re.match(r'post run \d+: (floor: |wsgate/floor: )?5000/s: (p99|max|frame after the write: p99|client: HTTP connections dialed|client: POSTs in flight at most|server GC cycles|other processes. CPU \(of one core\)|server CPU per POST|sent after schedule: p99) = ([\d.e+-]+)',line)
        if m: d[(m.group(1) or '',m.group(2))]=float(m.group(3))
    g=lambda f,k: d.get((f,k),float('nan'))
    print("%-28s p99 %7.2f / %7.2f | max %6.1f / %6.1f | after-write p99 %6.2f / %6.2f | sent-late p99 %6.2f / %6.2f | inflight %3.0f / %3.0f | dialed %3.0f / %3.0f | GC %.0f | others %4.0f%% / %4.0f%%"%(
      fn.split('/')[-1], g('','p99'),g('floor: ','p99'),g('','max'),g('floor: ','max'),g('','frame after the write: p99'),g('floor: ','frame after the write: p99'),g('','sent after schedule: p99'),g('floor: ','sent after schedule: p99'),
      g('','client: POSTs in flight at most'),g('floor: ','client: POSTs in flight at most'),g('','client: HTTP connections dialed'),g('floor: ','client: HTTP connections dialed'),g('','server GC cycles'),g('',"other processes' CPU (of one core)"),g('floor: ',"other processes' CPU (of one core)")))
