# python3 summary.py DIR A B: per scenario, the wsgate/raw-floor ratio of each
# of the 6 alternating pairs (A, B: the build names in the log names), the
# medians, and in how many pairs B was lower.
import re, sys, statistics as st
d, a, b = sys.argv[1:4]
def val(f, key):
    for l in open(f):
        if l.startswith('| ' + key + ' |'):
            return float(re.sub(r'[^0-9.e+-]', '', l.split('|')[2].split()[0]))
for kind in ('no $connect', 'http $connect'):
    key, fl = kind + ': wsgate: server CPU per handshake', kind + ': floor (raw): server CPU per handshake'
    ra, rb = [], []
    for i in range(1, 7):
        fa, fb = f'{d}/handshake-accept-{a}-{i}.log', f'{d}/handshake-accept-{b}-{i}.log'
        ra.append(val(fa, key) / val(fa, fl))
        rb.append(val(fb, key) / val(fb, fl))
    lower = sum(1 for x, y in zip(ra, rb) if y < x)
    print(f"{kind}: {a} {' '.join(f'{x:.2f}' for x in ra)} (median {st.median(ra):.3f}); "
          f"{b} {' '.join(f'{x:.2f}' for x in rb)} (median {st.median(rb):.3f}); {b} lower in {lower}/6")
