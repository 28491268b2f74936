// The live view's one page: a tile per camera with its MJPEG stream and, beside it, the
// daemon's health, the camera's frame rate and latency, and its active alerts, polled from
// /state.json. Self-contained (no framework, nothing fetched from elsewhere), so it works
// on a vehicle's network with no internet.

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

const STYLE = `
  body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #111; color: #eee; }
  header { padding: 8px 16px; background: #222; display: flex; gap: 24px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  #conn { margin-left: auto; color: #aaa; }
  #conn.lost { color: #ff5050; font-weight: bold; }
  main { display: flex; flex-direction: column; gap: 16px; padding: 16px; }
  .tile { display: flex; gap: 16px; background: #1b1b1b; border: 1px solid #333; padding: 12px; }
  .frame { flex: 0 1 960px; min-width: 320px; }
  /* The whole frame in view: as wide as the tile allows, never taller than the window. */
  .frame img { display: block; max-width: 100%; max-height: calc(100vh - 90px); background: #000; min-height: 120px; }
  .panel { flex: 0 0 320px; }
  .panel h2 { margin: 0 0 8px; font-size: 20px; }
  .badge { display: inline-block; padding: 2px 10px; border-radius: 4px; font-weight: bold; color: #000; }
  .OK { background: #3c3; } .DEGRADED { background: #fc0; } .FAULT { background: #f44; }
  .STARTING, .STOPPING, .UNKNOWN { background: #999; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 12px 0; }
  dt { color: #aaa; } dd { margin: 0; font-variant-numeric: tabular-nums; }
  ul { margin: 4px 0; padding-left: 18px; }
  .alerts li { list-style: none; margin: 4px 0 4px -18px; padding: 4px 8px; border-radius: 4px; color: #000; }
  .alerts .info { background: #40a0ff; } .alerts .warning { background: #ffc800; } .alerts .critical { background: #c80000; color: #fff; }
  .alerts .stale { opacity: 0.6; }
  .none { color: #888; }
`;

// Runs in the browser: polls /state.json and fills each camera's panel.
const SCRIPT = `
const fmt = (v, d, unit) => (typeof v === "number" && isFinite(v) ? v.toFixed(d) + unit : "–");
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
function fill(tile, cam, health) {
  const state = health ? health.state : "UNKNOWN";
  const badge = tile.querySelector(".badge");
  badge.textContent = state; badge.className = "badge " + state;
  const reasons = tile.querySelector(".reasons");
  reasons.replaceChildren(...(health && health.reasons.length ? health.reasons.map((r) => el("li", "", r)) : [el("li", "none", "no reasons")]));
  const set = (k, v) => (tile.querySelector("[data-k=" + k + "]").textContent = v);
  set("cstate", cam ? cam.state : "–");
  set("fps", cam ? fmt(cam.fps, 1, " frames/s") : "–");
  set("e2e", cam ? fmt(cam.e2eP50Ms, 1, " ms") + " / " + fmt(cam.e2eP99Ms, 1, " ms") : "–");
  set("objects", cam ? (Object.entries(cam.objects).map(([k, n]) => n + " " + k).join(", ") || "none") : "–");
  const alerts = tile.querySelector(".alerts");
  const list = cam ? cam.alerts : [];
  alerts.replaceChildren(...(list.length ? list.map((a) => el("li", a.level + (a.valid ? "" : " stale"),
    a.level.toUpperCase() + " " + a.kind + " id" + a.trackId + " " + fmt(a.rangeM, 1, " m") + (typeof a.ttcS === "number" ? ", TTC " + fmt(a.ttcS, 1, " s") : "") + (a.valid ? "" : " (not valid)")))
    : [el("li", "none", "no active alerts")]));
}
async function poll() {
  const conn = document.getElementById("conn");
  try {
    const r = await fetch("/state.json", { cache: "no-store" });
    const s = await r.json();
    document.getElementById("model").textContent = s.health ? s.health.model + " on " + s.health.executionProvider : "";
    for (const tile of document.querySelectorAll(".tile")) fill(tile, s.cameras.find((c) => c.id === tile.dataset.camera), s.health);
    conn.textContent = "updated " + new Date().toLocaleTimeString(); conn.className = "";
  } catch (e) {
    conn.textContent = "daemon not reachable"; conn.className = "lost";
  }
}
window.addEventListener("load", () => {
  // Streams start after load: an MJPEG response never ends, and would hold the load event.
  for (const img of document.querySelectorAll("img[data-src]")) img.src = img.dataset.src;
  poll(); setInterval(poll, 500);
});
`;

function tile(id: string): string {
  const e = escapeHtml(id);
  const src = `/cameras/${encodeURIComponent(id)}/stream.mjpeg`;
  return `<section class="tile" data-camera="${e}">
  <div class="frame"><img data-src="${escapeHtml(src)}" alt="camera ${e}, annotated"></div>
  <div class="panel">
    <h2>${e}</h2>
    <span class="badge UNKNOWN">…</span>
    <ul class="reasons"></ul>
    <dl>
      <dt>camera</dt><dd data-k="cstate">–</dd>
      <dt>frame rate</dt><dd data-k="fps">–</dd>
      <dt>e2e p50 / p99</dt><dd data-k="e2e">–</dd>
      <dt>objects</dt><dd data-k="objects">–</dd>
    </dl>
    <h3>Active alerts</h3>
    <ul class="alerts"></ul>
  </div>
</section>`;
}

export function viewPage(cameras: readonly string[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>perceptd live view</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>perceptd live view</h1><span id="model"></span><span id="conn">connecting…</span></header>
<main>
${cameras.map(tile).join("\n")}
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
