// The job dashboard: polls the aggregator's job document (api/v1/job,
// relative, so the page works behind kubectl port-forward and the API
// server's service proxy), keeps the per-round history it has read and
// asks only for newer rounds (?since=). Everything the document says is
// written as text, never as HTML: executors' reasons come off the wire.
"use strict";
(function () {
  const POLL_MS = 2000;
  let history = [], stamp = null, accPlot = null, lossPlot = null;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fmt(v, digits) { return v === undefined || v === null ? "–" : Number(v).toFixed(digits); }
  function duration(s) {
    if (s === undefined || s === null) return "–";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
  }
  function ago(t, now) {
    if (!t) return "never";
    return duration((new Date(now) - new Date(t)) / 1000) + " ago";
  }

  function series(key) { return history.map(r => (r[key] === undefined ? null : r[key])); }
  function chart(target, names, keys, old) {
    const data = [history.map(r => r.round)].concat(keys.map(series));
    if (old) { old.setData(data); return old; }
    const colors = ["#1f77b4", "#ff7f0e"];
    const opts = {
      width: Math.min(560, window.innerWidth - 60), height: 260,
      scales: { x: { time: false } },
      axes: [{ label: "round" }, {}],
      series: [{ label: "round" }].concat(names.map((n, i) => ({ label: n, stroke: colors[i], spanGaps: true, points: { show: true } }))),
    };
    return new uPlot(opts, data, document.getElementById(target));
  }

  function render(d) {
    document.title = d.job + " — fedscale";
    document.getElementById("job").textContent = d.job + " (" + d.time_stamp + ")";
    const last = history.length ? history[history.length - 1] : null;
    const top1 = [...history].reverse().find(r => r.top_1 !== undefined);
    const summary = document.getElementById("summary");
    summary.replaceChildren(
      el("span", d.state, "state-" + d.state),
      el("span", " · round " + d.round + " of " + d.rounds),
      el("span", " · ETA " + duration(d.eta_seconds)),
      el("span", " · top-1 " + (top1 ? fmt(top1.top_1, 4) : "–")),
      el("span", " · virtual clock " + duration(d.virtual_clock)),
      el("span", " · wall clock " + duration(d.wall_clock)),
      el("span", " · participants " + d.round_participants + " of " + d.round_planned + " planned"));
    if (d.error) summary.append(el("div", d.error, "error"));

    const cfg = document.getElementById("config");
    cfg.replaceChildren(...Object.entries(d.config).map(([k, v]) => {
      const tr = el("tr"); tr.append(el("td", k), el("td", v)); return tr;
    }));

    const c = d.executor_counts;
    document.getElementById("counts").textContent = "(" + c.total + ": " + c.connected + " connected, " + c.lost + " lost, " +
      c.evicted + " evicted, " + c.waiting + " waiting, " + c.done + " done" + (d.executors.length < c.total ? "; the first " + d.executors.length + " listed" : "") + ")";
    const body = document.querySelector("#executors tbody");
    body.replaceChildren(...d.executors.map(e => {
      const tr = el("tr");
      tr.append(el("td", e.rank), el("td", e.state, "state-" + e.state), el("td", ago(e.last_contact, d.updated)),
        el("td", e.slots), el("td", e.tasks_done), el("td", e.tasks_reissued), el("td", e.reason || ""));
      return tr;
    }));

    const events = document.getElementById("events");
    events.replaceChildren(...[...d.events].reverse().map(e =>
      el("li", new Date(e.time).toLocaleTimeString() + "  " + e.message, "level-" + e.level)));

    accPlot = chart("acc", ["top-1", "top-5"], ["top_1", "top_5"], accPlot);
    lossPlot = chart("loss", ["training loss", "test loss"], ["loss", "test_loss"], lossPlot);
    document.getElementById("status").textContent = "updated " + new Date(d.updated).toLocaleTimeString() +
      (last ? " · " + history.length + " rounds recorded" : " · no round recorded yet");
  }

  async function fetchJob(since) {
    const resp = await fetch("api/v1/job?since=" + since, { cache: "no-store" });
    if (!resp.ok) throw new Error(resp.status + " " + (await resp.text()));
    return resp.json();
  }

  async function poll() {
    try {
      let d = await fetchJob(history.length ? history[history.length - 1].round : -1);
      if (d.time_stamp !== stamp) {
        // A restarted aggregator: a new run, whose document holds its own
        // rounds only. Ask for all of them; a run resumed from a
        // checkpoint goes on from the earlier run's rounds up to it.
        if (stamp !== null) d = await fetchJob(-1);
        history = d.resumed_at > 0 ? history.filter(r => r.round <= d.resumed_at) : [];
        stamp = d.time_stamp;
      }
      for (const r of d.history) {
        if (!history.length || r.round > history[history.length - 1].round) history.push(r);
      }
      render(d);
    } catch (err) {
      // The aggregator restarts or has ended: keep what is shown and retry.
      document.getElementById("status").textContent = "cannot reach the aggregator (" + err.message + "); retrying" +
        (history.length ? " · " + history.length + " rounds recorded" : "");
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();
