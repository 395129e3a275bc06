# python3 combine.py (in session14-post3-runs): per set, pairs where head is lower, and medians;
# user = CPU per POST x (1 - kernel share), kernel the rest; the floor's the same from its lines.
import re, glob, statistics as st
def g(f, key):
    for line in open(f):
        if line.startswith('| ' + key + ' |'):
            return float(re.sub('[^0-9.]', '', line.split('|')[2]))
def fig(f):
    w, wk = g(f, 'saturation: server CPU per POST'), g(f, 'saturation: server CPU in the kernel')
    fl, fk = g(f, 'floor: saturation: server CPU per POST'), g(f, 'floor: saturation: server CPU in the kernel')
    return dict(w=w, fl=fl, r=w / fl, wu=w * (100 - wk) / 100, fu=fl * (100 - fk) / 100, wk=w * wk / 100)
for sets, head in [(['h1'], 'post3-head1'), (['h2'], 'post3-head2'), (['h3', 'h4'], 'post3-head3'), (['h6'], 'post3-head4')]:
    B, H = [], []
    for d in sets:
        for hf in sorted(glob.glob(d + '/post-' + head + '-*.log')):
            B.append(fig(d + '/post-post3-base-' + hf.rsplit('-', 1)[1])); H.append(fig(hf))
    lower = lambda k: sum(1 for b, h in zip(B, H) if h[k] < b[k])
    print(head, sets, 'pairs', len(B), 'head lower: µs', lower('w'), 'ratio', lower('r'), 'user', lower('wu'), 'kernel', lower('wk'))
    for name, L in [('base', B), ('head', H)]:
        m = lambda k: st.median([x[k] for x in L])
        print('  %s medians: µs %.2f floor %.2f ratio %.3f user %.2f (floor %.2f) kernel %.2f' % (name, m('w'), m('fl'), m('r'), m('wu'), m('fu'), m('wk')))
