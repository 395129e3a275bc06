// wsgate demo dashboard. Plain JS, no build step, no dependencies.
//
// Protocol (see the Go package doc): subscribe on the stage's WebSocket,
// buffer records while fetching api/snapshot, render the snapshot, apply the
// buffer in order, then apply records as they come. Records are DynamoDB
// Streams records (events.DynamoDBEventRecord JSON); {"type":"viewers"}
// frames carry the viewer count; anything else is ignored.
(() => {
  'use strict';

  const FEED_MAX = 60;          // feed entries kept
  const CHART_SECONDS = 60;     // chart window
  const SYNC_WAIT_MS = 300;     // how long to wait for a first frame before fetching the snapshot
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const SEEN_MAX = 2000;        // eventIDs remembered to drop redelivered records

  const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  const state = {
    cfg: { stage: 'demo', group: 'orders', table: 'orders', sqliteCommand: '' },
    columns: [],
    key: ['id'],
    rows: new Map(),        // key string -> { tr, values }
    lastSeq: new Map(),     // key string -> SequenceNumber of the last record applied
    seen: new Set(),        // recent eventIDs
    socket: null,
    attempt: 0,
    retryTimer: 0,
    buckets: new Map(),     // unix second -> changes counted
  };

  // ---------- DynamoDB attribute values ----------

  function attr(v) {
    if (v === null || typeof v !== 'object') return v;
    if ('S' in v) return v.S;
    if ('N' in v) { const n = Number(v.N); return Number.isFinite(n) ? n : v.N; }
    if ('BOOL' in v) return v.BOOL;
    if ('NULL' in v) return null;
    if ('B' in v) return v.B;
    if ('M' in v) return Object.fromEntries(Object.entries(v.M || {}).map(([k, x]) => [k, attr(x)]));
    if ('L' in v) return (v.L || []).map(attr);
    if ('SS' in v) return v.SS;
    if ('NS' in v) return (v.NS || []).map(Number);
    if ('BS' in v) return v.BS;
    return undefined;
  }

  function image(m) {
    if (!m || typeof m !== 'object') return null;
    const out = {};
    for (const [k, v] of Object.entries(m)) out[k] = attr(v);
    return out;
  }

  // keyString names a row by its key columns' values, in the table's key
  // order (or the record's, sorted, when the names differ).
  function keyString(values, names) {
    return names.map((n) => String(values[n])).join(' / ');
  }

  function recordKeyNames(keys) {
    const names = Object.keys(keys);
    if (names.length === state.key.length && state.key.every((k) => k in keys)) return state.key;
    return names.sort();
  }

  // compareSeq orders DynamoDB sequence numbers (decimal strings of any length).
  function compareSeq(a, b) {
    if (a.length !== b.length) return a.length - b.length;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  // ---------- formatting ----------

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const headLabels = { quantity: 'qty', updated_at: 'updated' };
  const moneyCols = /^(amount|price|total|cost|subtotal)$/i;
  const timeCols = /(_at|_time|time|date)$/i;

  function colClass(name, value) {
    const c = ['col-' + name.replace(/[^\w-]/g, '_')];
    if (state.key.includes(name)) c.push('key');
    else if (typeof value === 'number') c.push('num');
    else if (timeCols.test(name)) c.push('time');
    return c.join(' ');
  }

  function display(name, v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number' && moneyCols.test(name)) return v.toFixed(2);
    if (typeof v === 'number') return v.toLocaleString();
    if (typeof v === 'string' && timeCols.test(name)) {
      const t = Date.parse(v);
      if (!Number.isNaN(t)) return timeFmt.format(t);
    }
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function fillCell(td, name, v) {
    td.className = colClass(name, v);
    td.dataset.col = name;
    td.dataset.value = v === null || v === undefined ? '' : (typeof v === 'object' ? JSON.stringify(v) : String(v));
    td.replaceChildren();
    if (v === null || v === undefined) {
      td.append(el('span', 'null', '—'));
    } else if (name === 'status' && typeof v === 'string') {
      const p = el('span', 'pill', v);
      p.dataset.status = v;
      td.append(p);
    } else {
      td.textContent = display(name, v);
    }
    if (typeof v === 'string' && timeCols.test(name)) td.title = v;
  }

  function same(a, b) {
    if (a === b) return true;
    if (typeof a === 'object' && typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
    return false;
  }

  // glow fades a background colour out of node. The Web Animations API
  // restarts it without forcing a layout, as toggling a CSS class would.
  function glow(node, colorVar, ms) {
    if (reducedMotion.matches) return;
    const c = colors[colorVar];
    node.animate([{ backgroundColor: c }, { backgroundColor: c, offset: 0.2 }, { backgroundColor: 'transparent' }],
      { duration: ms, easing: 'ease-out' });
  }

  // ---------- table ----------

  function ensureColumns(values) {
    let added = false;
    for (const k of Object.keys(values)) {
      if (!state.columns.includes(k)) { state.columns.push(k); added = true; }
    }
    if (added) renderHead();
  }

  function renderHead() {
    const tr = $('#rows thead tr');
    tr.replaceChildren();
    for (const c of state.columns) {
      const th = el('th', 'col-' + c.replace(/[^\w-]/g, '_'), headLabels[c] || c.replace(/_/g, ' '));
      th.title = c;
      if (['quantity', 'amount', 'price', 'total'].includes(c)) th.classList.add('num');
      tr.append(th);
    }
    for (const row of state.rows.values()) renderRow(row, row.values, false);
  }

  function renderRow(row, values, flash) {
    const tds = row.tr.children;
    state.columns.forEach((c, i) => {
      let td = tds[i];
      if (!td) { td = el('td'); row.tr.append(td); }
      const v = values[c];
      const changed = !same(row.values[c], v);
      if (changed || td.dataset.col !== c) fillCell(td, c, v);
      if (flash && changed) glow(td, '--flash', 1800);
    });
    while (row.tr.children.length > state.columns.length) row.tr.lastChild.remove();
    row.values = values;
  }

  function upsert(key, values, { highlight, prepend }) {
    const tbody = $('#rows tbody');
    let row = state.rows.get(key);
    if (row) {
      renderRow(row, values, highlight);
      return;
    }
    const tr = el('tr');
    tr.dataset.key = key;
    row = { tr, values: {} };
    renderRow(row, values, false);
    state.rows.set(key, row);
    if (prepend) tbody.prepend(tr); else tbody.append(tr);
    if (highlight) glow(tr, '--new', 2600);
    updateCount();
  }

  function remove(key) {
    const row = state.rows.get(key);
    if (!row) return;
    state.rows.delete(key);
    if (reducedMotion.matches) {
      row.tr.remove();
    } else {
      row.tr.classList.add('is-gone');
      setTimeout(() => row.tr.remove(), 650);
    }
    updateCount();
  }

  function updateCount() {
    $('#row-count').textContent = state.rows.size;
    $('#empty').hidden = state.rows.size > 0;
  }

  // applySnapshot makes the table equal to the snapshot, keeping the rows
  // that are already shown (and flashing what changed while disconnected).
  function applySnapshot(snap, first) {
    if (Array.isArray(snap.key) && snap.key.length) state.key = snap.key;
    if (Array.isArray(snap.columns) && snap.columns.length) {
      const cols = snap.columns.slice();
      for (const c of state.columns) if (!cols.includes(c)) cols.push(c);
      const changed = cols.join('\u0000') !== state.columns.join('\u0000');
      state.columns = cols;
      if (changed) renderHead();
    }
    const rows = Array.isArray(snap.rows) ? snap.rows : [];
    const keep = new Set();
    const tbody = $('#rows tbody');
    for (const values of rows) {
      if (!state.columns.length) ensureColumns(values);
      const key = keyString(values, state.key);
      keep.add(key);
      upsert(key, values, { highlight: !first, prepend: false });
      tbody.append(state.rows.get(key).tr); // snapshot order: newest first
    }
    for (const key of [...state.rows.keys()]) if (!keep.has(key)) remove(key);
    state.lastSeq.clear();
    if (Number.isFinite(snap.viewers) && snap.viewers > 0) setViewers(snap.viewers);
    updateCount();
  }

  // ---------- records ----------

  function isRecord(m) {
    return m && typeof m === 'object' && typeof m.eventName === 'string' &&
      m.dynamodb && typeof m.dynamodb === 'object' &&
      m.dynamodb.Keys && typeof m.dynamodb.Keys === 'object';
  }

  function applyRecord(rec) {
    if (rec.eventID) {
      if (state.seen.has(rec.eventID)) return;
      state.seen.add(rec.eventID);
      if (state.seen.size > SEEN_MAX) state.seen.delete(state.seen.values().next().value);
    }
    const d = rec.dynamodb;
    const keys = image(d.Keys);
    const key = keyString(keys, recordKeyNames(d.Keys));
    const seq = typeof d.SequenceNumber === 'string' ? d.SequenceNumber : '';
    const last = state.lastSeq.get(key);
    if (seq && last && compareSeq(seq, last) <= 0) return; // redelivered or stale
    if (seq) state.lastSeq.set(key, seq);

    const oldImg = image(d.OldImage);
    const newImg = image(d.NewImage);
    switch (rec.eventName) {
      case 'INSERT':
      case 'MODIFY': {
        const existing = state.rows.get(key);
        const values = Object.assign({}, existing ? existing.values : {}, keys, newImg || {});
        ensureColumns(values);
        upsert(key, values, { highlight: true, prepend: true });
        break;
      }
      case 'REMOVE':
        remove(key);
        break;
      default:
        return;
    }
    countChange();
    addFeed(rec.eventName, key, oldImg, newImg, d.ApproximateCreationDateTime);
  }

  // ---------- feed ----------

  function summary(img) {
    if (!img) return '';
    const parts = [];
    for (const c of ['customer', 'item', 'status']) if (img[c] !== undefined && img[c] !== null && img[c] !== '') parts.push(display(c, img[c]));
    if (!parts.length) {
      for (const [k, v] of Object.entries(img)) {
        if (state.key.includes(k) || timeCols.test(k)) continue;
        parts.push(k + ' ' + display(k, v));
        if (parts.length === 3) break;
      }
    }
    return parts.join(' · ');
  }

  function addFeed(kind, key, oldImg, newImg, when) {
    const li = el('li');
    li.dataset.kind = kind;
    li.dataset.key = key;
    const head = el('div', 'ev-head');
    const badge = el('span', 'ev-kind', kind);
    badge.dataset.kind = kind;
    const t = Number.isFinite(when) && when > 0 ? when * 1000 : Date.now();
    head.append(badge, el('span', 'ev-key', key), el('time', 'ev-time', timeFmt.format(t)));
    const body = el('div', 'ev-body');
    if (kind === 'MODIFY' && oldImg && newImg) {
      const names = new Set([...state.columns, ...Object.keys(oldImg), ...Object.keys(newImg)]);
      let shown = 0;
      for (const n of names) {
        if (timeCols.test(n) || same(oldImg[n], newImg[n])) continue;
        const line = el('div', 'ev-change');
        line.append(el('span', 'ev-attr', n.replace(/_/g, ' ')),
          el('span', 'ev-old', display(n, oldImg[n])),
          el('span', 'ev-arrow', '→'),
          el('span', 'ev-new', display(n, newImg[n])));
        body.append(line);
        shown++;
      }
      if (!shown) body.append(el('div', '', 'touched, no visible change'));
    } else if (kind === 'REMOVE') {
      body.append(el('div', 'ev-old', summary(oldImg) || 'deleted'));
    } else {
      body.append(el('div', '', summary(newImg)));
    }
    li.append(head, body);
    const feed = $('#feed');
    feed.prepend(li);
    while (feed.children.length > FEED_MAX) feed.lastChild.remove();
    $('#feed-empty').hidden = true;
  }

  // ---------- chart ----------

  function countChange() {
    const s = Math.floor(Date.now() / 1000);
    state.buckets.set(s, (state.buckets.get(s) || 0) + 1);
    for (const k of state.buckets.keys()) if (k < s - CHART_SECONDS - 2) state.buckets.delete(k);
    scheduleChart();
  }

  // colors caches the theme's custom properties for the canvas and the
  // highlights; reading computed styles on every change would force style
  // recalculation each time.
  const colors = {};
  function readColors() {
    const cs = getComputedStyle(document.documentElement);
    for (const n of ['--muted', '--line-soft', '--accent', '--sans', '--flash', '--new']) colors[n] = cs.getPropertyValue(n).trim();
  }

  let chartQueued = false;
  function scheduleChart() {
    if (chartQueued) return;
    chartQueued = true;
    requestAnimationFrame(() => { chartQueued = false; drawChart(); });
  }

  function drawChart() {
    const canvas = $('#chart');
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);

    const now = Math.floor(Date.now() / 1000);
    const values = [];
    for (let s = now - CHART_SECONDS + 1; s <= now; s++) values.push(state.buckets.get(s) || 0);
    const total = values.reduce((a, b) => a + b, 0);
    const current = values[values.length - 2] || 0; // the last complete second
    $('#rate-now').textContent = Math.max(current, values[values.length - 1]);
    $('#rate-total').textContent = total;

    const max = Math.max(4, ...values);
    const step = max <= 5 ? 1 : max <= 10 ? 2 : max <= 25 ? 5 : max <= 50 ? 10 : Math.ceil(max / 5 / 10) * 10;
    const top = Math.ceil(max / step) * step;
    const padL = 26, padB = 18, padT = 6;
    const plotW = w - padL, plotH = h - padB - padT;
    const muted = colors['--muted'], line = colors['--line-soft'], accent = colors['--accent'];

    ctx.font = '11px ' + colors['--sans'];
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    for (let v = 0; v <= top; v += step) {
      const y = padT + plotH - (v / top) * plotH;
      ctx.strokeStyle = line;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(padL, Math.round(y) + 0.5);
      ctx.lineTo(w, Math.round(y) + 0.5);
      ctx.stroke();
      ctx.fillStyle = muted;
      ctx.fillText(String(v), padL - 6, y);
    }
    ctx.textBaseline = 'alphabetic';
    ctx.fillStyle = muted;
    ctx.textAlign = 'left';
    ctx.fillText('60 s ago', padL, h - 3);
    ctx.textAlign = 'right';
    ctx.fillText('now', w, h - 3);

    const slot = plotW / CHART_SECONDS;
    const bw = Math.max(1, slot - Math.min(3, slot * 0.3));
    values.forEach((v, i) => {
      if (!v) return;
      const bh = Math.max(2, (v / top) * plotH);
      const x = padL + i * slot + (slot - bw) / 2;
      const y = padT + plotH - bh;
      ctx.fillStyle = accent;
      ctx.globalAlpha = i === values.length - 1 ? 1 : 0.35 + 0.5 * (i / values.length);
      roundRect(ctx, x, y, bw, bh, Math.min(3, bw / 2));
      ctx.fill();
    });
    ctx.globalAlpha = 1;
  }

  function roundRect(ctx, x, y, w, h, r) {
    ctx.beginPath();
    ctx.moveTo(x, y + h);
    ctx.lineTo(x, y + r);
    ctx.arcTo(x, y, x + r, y, r);
    ctx.lineTo(x + w - r, y);
    ctx.arcTo(x + w, y, x + w, y + r, r);
    ctx.lineTo(x + w, y + h);
    ctx.closePath();
  }

  // ---------- viewers and connection state ----------

  function setViewers(n) {
    $('#viewers').textContent = n;
    $('#viewers-label').textContent = 'watching';
    $('#viewers-chip').title = n === 1 ? 'Only you are watching' : n + ' pages are watching';
  }

  function setConn(s, text) {
    const c = $('#conn');
    c.dataset.state = s;
    $('#conn-text').textContent = text;
  }

  // ---------- connection ----------

  function wsURL() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return proto + '//' + location.host + '/' + encodeURIComponent(state.cfg.stage);
  }

  function parseFrame(data) {
    if (typeof data !== 'string') return [];
    let m;
    try { m = JSON.parse(data); } catch { return []; }
    if (!m || typeof m !== 'object') return [];
    if (Array.isArray(m.Records)) return m.Records.filter(isRecord); // a whole DynamoDBEvent
    if (Array.isArray(m)) return m.filter((x) => isRecord(x) || (x && x.type === 'viewers'));
    if (isRecord(m) || m.type === 'viewers') return [m];
    return [{ other: true }]; // an ack or an error frame: nothing to apply
  }

  function handle(frame) {
    if (frame.other) return;
    if (frame.type === 'viewers') {
      if (Number.isFinite(frame.count)) setViewers(frame.count);
      return;
    }
    applyRecord(frame);
  }

  function connect() {
    clearTimeout(state.retryTimer);
    if (state.socket) return;
    setConn(state.attempt ? 'reconnecting' : 'connecting', state.attempt ? 'Reconnecting…' : 'Connecting…');
    let ws;
    try {
      ws = new WebSocket(wsURL());
    } catch {
      retry();
      return;
    }
    state.socket = ws;
    let buffer = [];      // frames received before the snapshot was applied
    let syncing = false;  // snapshot requested
    let syncTimer = 0;

    const sync = async () => {
      if (syncing) return;
      syncing = true;
      clearTimeout(syncTimer);
      let snap;
      try {
        const res = await fetch('api/snapshot', { cache: 'no-store' });
        if (!res.ok) throw new Error('snapshot: HTTP ' + res.status);
        snap = await res.json();
      } catch {
        if (state.socket === ws) ws.close();
        return;
      }
      if (state.socket !== ws) return;
      applySnapshot(snap, state.rows.size === 0 && !state.everSynced);
      const pending = buffer;
      buffer = null;
      for (const f of pending) handle(f);
      state.everSynced = true;
      state.attempt = 0;
      setConn('live', 'Live');
    };

    ws.onopen = () => {
      ws.send(JSON.stringify({ action: 'subscribe', group: state.cfg.group }));
      // The snapshot must be read after the subscription took effect, or a
      // change between the two would be lost. The first frame back (an
      // ack, a viewer count, a record) shows it did; without one, wait a
      // moment.
      syncTimer = setTimeout(sync, SYNC_WAIT_MS);
    };
    ws.onmessage = (ev) => {
      const frames = parseFrame(ev.data);
      if (buffer) {
        buffer.push(...frames);
        sync();
        return;
      }
      for (const f of frames) handle(f);
    };
    ws.onclose = () => {
      clearTimeout(syncTimer);
      if (state.socket !== ws) return;
      state.socket = null;
      retry();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  function retry() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
    const delay = Math.round(base * (0.6 + Math.random() * 0.4));
    state.attempt++;
    const until = Date.now() + delay;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      setConn(navigator.onLine === false ? 'offline' : 'reconnecting',
        left > 0 ? 'Reconnecting in ' + left + ' s' : 'Reconnecting…');
    };
    tick();
    const iv = setInterval(tick, 500);
    state.retryTimer = setTimeout(() => { clearInterval(iv); connect(); }, delay);
    state.retryInterval = iv;
  }

  function retryNow() {
    if (state.socket) return;
    clearTimeout(state.retryTimer);
    clearInterval(state.retryInterval);
    connect();
  }

  // ---------- start ----------

  function copyCommand() {
    const text = $('#sqlite-cmd').textContent;
    const done = () => {
      const b = $('#copy');
      b.textContent = 'Copied';
      setTimeout(() => { b.textContent = 'Copy'; }, 1600);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => selectCommand());
    } else {
      selectCommand();
      try { if (document.execCommand('copy')) done(); } catch { /* selected; the user can copy */ }
    }
  }

  function selectCommand() {
    const r = document.createRange();
    r.selectNodeContents($('#sqlite-cmd'));
    const s = getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }

  async function loadConfig() {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch('api/config', { cache: 'no-store' });
        if (!res.ok) throw new Error('config: HTTP ' + res.status);
        return await res.json();
      } catch {
        setConn('offline', 'Server unreachable');
        await new Promise((r) => setTimeout(r, Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt)));
      }
    }
  }

  async function start() {
    $('#copy').addEventListener('click', copyCommand);
    setConn('connecting', 'Connecting…');
    Object.assign(state.cfg, await loadConfig());
    $('#table-name').textContent = state.cfg.table;
    $('#rows-table').textContent = state.cfg.table;
    $('#group-name').textContent = state.cfg.group;
    $('#flow-group').textContent = 'group ' + state.cfg.group;
    $('#sqlite-cmd').textContent = state.cfg.sqliteCommand;
    $('#ws-url').textContent = wsURL();
    document.title = 'wsgate · ' + state.cfg.table + ' live';
    readColors();
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { readColors(); scheduleChart(); });
    drawChart();
    setInterval(drawChart, 1000);
    new ResizeObserver(scheduleChart).observe($('#chart'));
    window.addEventListener('online', retryNow);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) retryNow(); });
    connect();
  }

  start();
})();
