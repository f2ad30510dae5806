// Batching gain of `moe serve`: aggregate decode tokens/s with S concurrent streams, for each S given.
// Every stream asks for N tokens past end-of-generation (ignore_eos) after a short prompt; decode rate =
// tokens generated after each stream's first token / wall time from the first stream's first token to the last
// stream's end. Needs only Node (plain fetch, no npm packages).
// Works against any OpenAI-style server that honours ignore_eos (moe serve, llama-server): tokens are counted from
// usage.completion_tokens when the server sends it, otherwise one per streamed chunk with a choice, and a stream's
// first token is its first such chunk, whether or not its text is empty (a byte-level token may print nothing).
// Usage: node bench/serve_bench.cjs BASE_URL [N_TOKENS=128] [STREAMS=1,8] [REPEATS=3] [TEMPERATURE=0] [BIAS.json]
// BIAS.json: a logit_bias object sent with every request (bench/ascii_bias.py writes one that keeps random models
// to ASCII tokens, which llama-server needs).
'use strict';
const [base, nTok = '128', streamsArg = '1,8', repeats = '3', temperature = '0', biasFile] = process.argv.slice(2);
const logitBias = biasFile ? JSON.parse(require('fs').readFileSync(biasFile, 'utf8')) : undefined;
if (!base) { console.error('usage: node serve_bench.cjs BASE_URL [N_TOKENS] [STREAMS] [REPEATS]'); process.exit(2); }

async function stream(i, n) {
  const res = await fetch(base + '/v1/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt: `Chapter ${i + 1}. It was`, max_tokens: n, temperature: +temperature, seed: i, stream: true, stream_options: { include_usage: true }, ignore_eos: true, logit_bias: logitBias }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '', first = 0, usage = -1, chunks = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k);
      buf = buf.slice(k + 2);
      if (!ev.startsWith('data: {')) continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage && Number.isInteger(j.usage.completion_tokens)) usage = j.usage.completion_tokens;
      if (j.choices && j.choices.length && !j.choices[0].finish_reason) {
        ++chunks;
        if (!first) first = performance.now();
      }
    }
  }
  const tokens = usage >= 0 ? usage : chunks;
  if (!first || tokens < 2) throw new Error(`stream ${i}: ${tokens} token(s) received, need at least 2 to time decoding`);
  return { first, end: performance.now(), tokens };
}

async function main() {
  for (const s of streamsArg.split(',').map(Number)) {
    const rates = [];
    for (let r = 0; r < +repeats; ++r) {
      const res = await Promise.all(Array.from({ length: s }, (_, i) => stream(i, +nTok)));
      const t0 = Math.min(...res.map((x) => x.first)), t1 = Math.max(...res.map((x) => x.end));
      const toks = res.reduce((a, x) => a + x.tokens - 1, 0);
      rates.push(toks / ((t1 - t0) / 1000));
    }
    rates.sort((a, b) => a - b);
    console.log(`streams ${s}: aggregate decode ${rates[rates.length >> 1].toFixed(1)} tok/s (median of ${repeats}; ` +
                `min ${rates[0].toFixed(1)}, max ${rates[rates.length - 1].toFixed(1)}), per stream ${(rates[rates.length >> 1] / s).toFixed(1)} tok/s`);
  }
}
main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
