// The page at `/`: a chat that streams from /v1/chat/completions, and under it, for each generated token, the
// experts each layer picked in the step that produced it (the request asks for them with "moe": {"trace": true}).
// One self-contained string: no CDN, no build step.
#include "serve/server.h"

namespace moe::serve {

const char* web_page_html() {
  return R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>moe serve</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:0;display:flex;flex-direction:column;height:100vh;background:#fafafa}
header{padding:8px 14px;background:#223;color:#eee}header b{color:#fff}
#log{flex:1;overflow:auto;padding:10px 14px}
.msg{margin:6px 0;padding:8px 10px;border-radius:6px;white-space:pre-wrap;max-width:60em}
.user{background:#dde8ff}.assistant{background:#fff;border:1px solid #ddd}
form{display:flex;gap:6px;padding:8px 14px;border-top:1px solid #ccc;background:#fff}
#input{flex:1;font:inherit;padding:6px}button{font:inherit;padding:6px 14px}
#opts{padding:4px 14px;font-size:13px;color:#444}#opts input{width:4em}
#experts{height:34vh;overflow:auto;border-top:1px solid #ccc;background:#fff;padding:6px 14px;font-size:12px}
#tokens span.tok{display:inline-block;border:1px solid #ccc;margin:1px;padding:0 3px;cursor:pointer;white-space:pre;font-family:monospace}
#tokens span.tok.sel{background:#ffd}
table.grid{border-collapse:collapse;margin-top:6px}table.grid td{width:14px;height:14px;border:1px solid #eee;padding:0}
table.grid td.on{background:#36c}table.grid th{font-weight:normal;padding:0 4px;text-align:right}
</style></head><body>
<header><b>moe serve</b> <span id="model"></span> &middot; chat with streaming; below, the experts every layer chose for each token</header>
<div id="log"></div>
<div id="opts">max tokens <input id="max" value="64"> temperature <input id="temp" value="0.7"> experts k <input id="k" placeholder="model"> <span id="status"></span></div>
<form id="form"><input id="input" autocomplete="off" placeholder="Type a message"><button id="send">Send</button></form>
<div id="experts"><div>Experts per token (click a token; rows are layers, columns experts):</div><div id="tokens"></div><div id="grid"></div></div>
<script>
'use strict';
const history = [];
const log = document.getElementById('log'), tokens = document.getElementById('tokens'), grid = document.getElementById('grid');
let nExpert = 0;
fetch('/v1/models').then(r => r.json()).then(j => { document.getElementById('model').textContent = j.data[0].id; });
function add(role, text) {
  const d = document.createElement('div'); d.className = 'msg ' + role; d.textContent = text; log.appendChild(d);
  log.scrollTop = log.scrollHeight; return d;
}
function showGrid(t, el) {
  for (const s of tokens.querySelectorAll('.sel')) s.classList.remove('sel');
  el.classList.add('sel');
  const tbl = document.createElement('table'); tbl.className = 'grid';
  t.experts.forEach((ids, layer) => {
    const tr = document.createElement('tr'); const th = document.createElement('th'); th.textContent = 'L' + layer; tr.appendChild(th);
    for (let e = 0; e < nExpert; e++) {
      const td = document.createElement('td'); if (ids.includes(e)) td.className = 'on'; td.title = 'layer ' + layer + ', expert ' + e; tr.appendChild(td);
    }
    tbl.appendChild(tr);
  });
  grid.replaceChildren(tbl);
}
function addToken(t) {
  for (const ids of t.experts) for (const e of ids) nExpert = Math.max(nExpert, e + 1);
  const s = document.createElement('span'); s.className = 'tok'; s.textContent = t.piece === '' ? '\u2205' : t.piece;
  s.title = t.experts.map((ids, l) => 'L' + l + ': ' + ids.join(',')).join('\n');
  s.onclick = () => showGrid(t, s); tokens.appendChild(s); showGrid(t, s);
}
document.getElementById('form').onsubmit = async (ev) => {
  ev.preventDefault();
  const input = document.getElementById('input'), text = input.value.trim(); if (!text) return;
  input.value = ''; add('user', text); history.push({role: 'user', content: text});
  const out = add('assistant', ''); tokens.replaceChildren(); grid.replaceChildren();
  const body = {messages: history, stream: true, max_tokens: +document.getElementById('max').value || 64,
                temperature: +document.getElementById('temp').value, moe: {trace: true}};
  const k = +document.getElementById('k').value; if (k > 0) body.moe.experts_k = k;
  const status = document.getElementById('status'); status.textContent = 'generating...';
  try {
    const res = await fetch('/v1/chat/completions', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    if (!res.ok) { const j = await res.json(); throw new Error(j.error ? j.error.message : res.statusText); }
    const reader = res.body.getReader(), dec = new TextDecoder(); let buf = '', reply = '';
    for (;;) {
      const {done, value} = await reader.read(); if (done) break;
      buf += dec.decode(value, {stream: true});
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!ev.startsWith('data: ')) continue;
        const data = ev.slice(6); if (data === '[DONE]') continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        const c = j.choices && j.choices[0];
        if (c && c.delta && c.delta.content) { reply += c.delta.content; out.textContent = reply; log.scrollTop = log.scrollHeight; }
        if (j.moe_trace) for (const t of j.moe_trace) addToken(t);
        if (c && c.finish_reason) status.textContent = 'done (' + c.finish_reason + ')';
      }
    }
    history.push({role: 'assistant', content: reply});
  } catch (e) { out.textContent = 'error: ' + e.message; status.textContent = 'error'; }
};
</script></body></html>
)HTML";
}

}  // namespace moe::serve
