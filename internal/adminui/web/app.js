"use strict";
// The admin page: polls api/snapshot once a second and renders it. Rates
// are the difference between two snapshots' totals.
(() => {
  const $ = (id) => document.getElementById(id);
  const history = { conns: [], msgs: [], errs: [] }; // the last 120 points
  let last = null;
  let search = "";

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const ago = (t, now) => {
    const s = Math.max(0, Math.round((now - new Date(t)) / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  };
  const fill = (table, rows) => {
    const body = $(table).tBodies[0];
    body.replaceChildren(...rows);
  };
  const row = (cells) => {
    const tr = el("tr");
    for (const c of cells) tr.append(c instanceof Node ? c : el("td", String(c)));
    return tr;
  };
  const plot = (id, points) => {
    const max = Math.max(1, ...points);
    // Right-aligned, one unit per second: the newest point at the right edge.
    const off = 120 - points.length;
    const pts = points.map((v, i) => (off + i + 1) + "," + (29 - (v / max) * 28).toFixed(1));
    $(id).querySelector("polyline").setAttribute("points", pts.join(" "));
  };
  const push = (arr, v) => { arr.push(v); if (arr.length > 120) arr.shift(); };

  async function disconnect(id, button) {
    button.disabled = true;
    const r = await fetch(api("api/disconnect?id=" + encodeURIComponent(id)), { method: "POST", headers: { "X-Wsgate-Admin": "1" } });
    if (!r.ok && r.status !== 410) button.disabled = false;
    poll();
  }

  function render(s) {
    const now = new Date(s.time);
    $("conn-count").textContent = s.connections;
    let msgRate = 0, errRate = 0;
    const prev = last ? Object.fromEntries(last.routes.map((r) => [r.route, r])) : {};
    const dt = last ? Math.max(0.001, (now - new Date(last.time)) / 1000) : 0;
    fill("routes", s.routes.map((r) => {
      const p = prev[r.route];
      const rate = p && dt ? (r.messages - p.messages) / dt : 0;
      msgRate += rate;
      errRate += p && dt ? (r.errors - p.errors) / dt : 0;
      const avg = r.calls ? (1000 * r.latencySeconds / r.calls).toFixed(1) + " ms" : "–";
      return row([el("td", r.route, "id"), r.messages, rate.toFixed(1), r.errors, avg]);
    }));
    if (last) {
      push(history.conns, s.connections);
      push(history.msgs, msgRate);
      push(history.errs, errRate);
      $("msg-rate").textContent = msgRate.toFixed(1);
      $("err-rate").textContent = errRate.toFixed(1);
      plot("conn-chart", history.conns);
      plot("msg-chart", history.msgs);
      plot("err-chart", history.errs);
    }
    fill("connections", s.list.map((c) => {
      const b = el("button", "Disconnect");
      b.dataset.id = c.id;
      b.addEventListener("click", () => disconnect(c.id, b));
      const td = el("td"); td.append(b);
      const tr = row([el("td", c.id, "id"), c.sourceIp, el("td", c.userAgent || "–", "ua"),
        (c.groups || []).join(", ") || "–", ago(c.connectedAt, now), ago(c.lastActiveAt, now) + " ago", td]);
      tr.dataset.id = c.id;
      return tr;
    }));
    let note = s.matched + " shown of " + s.connections;
    if (s.matched > s.list.length) note = s.list.length + " of " + s.matched + " matching shown";
    if (s.scanned < s.connections) note += " (searched the first " + s.scanned + ")";
    $("list-note").textContent = note;
    fill("groups", s.groups.map((g) => row([el("td", g.name, "id"), g.size])));
    fill("streams", s.streams.map((st) => row([st.name, el("td", st.state, "state-" + st.state), st.delivered, st.lagMillis + " ms"])));
    fill("functions", s.functions.map((f) => row([f.name, f.processes, f.coldStarts, f.invocations, f.errors])));
    const nodes = s.nodes || [];
    $("cluster").hidden = nodes.length === 0;
    fill("nodes", nodes.map((n) => {
      const tr = row([el("td", n.name + (n.self ? " (this node)" : ""), "id"), el("td", n.byte, "id"), el("td", n.state, "state-" + n.state),
        n.connections, n.groups, n.self ? "–" : (n.lastSeenMillis / 1000).toFixed(1) + " s ago"]);
      tr.dataset.node = n.name;
      return tr;
    }));
    last = s;
  }

  // A page opened as http://user:secret@host/ has the credentials in its
  // URL, and fetch refuses a URL with credentials: resolve against the
  // origin (the browser keeps sending the credentials it authenticated
  // the page with).
  const api = (path) => new URL(path, location.origin + location.pathname).href;

  let timer = null;
  async function poll() {
    clearTimeout(timer);
    try {
      const r = await fetch(api("api/snapshot?q=") + encodeURIComponent(search), { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
      $("status").textContent = "Live";
      $("status").className = "status";
    } catch (e) {
      $("status").textContent = "Not reachable: " + e.message;
      $("status").className = "status bad";
    }
    timer = setTimeout(poll, 1000);
  }
  $("search").addEventListener("input", (e) => { search = e.target.value.trim(); poll(); });
  poll();
})();
