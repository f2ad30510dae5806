// A bounded load test of `moe serve` on loopback: 16 concurrent clients x 20 streamed requests of mixed lengths
// (none may be lost or fail; p50/p99 latency and aggregate tokens/s are printed), then 8 clients that disconnect
// mid-stream, after which no slot may stay busy.
// Usage: node serve_load.cjs MOE_BINARY [NPM_DIR] [CLIENTS] [REQUESTS]
'use strict';
const { npmRequire, startServer, check, defaultNpmDir } = require('./serve/server_process.cjs');

const [moe, npmDir = defaultNpmDir(), nClients = '16', nRequests = '20'] = process.argv.slice(2);
const OpenAI = npmRequire(npmDir, 'openai').default || npmRequire(npmDir, 'openai');
const prompts = ['Once upon a time', 'The President said', 'Tell me about the sea.', 'Why', 'In the beginning God created',
                 'It is a truth universally acknowledged, that a single man in possession of a good fortune'];

function metric(text, name) {
  const m = text.match(new RegExp('^' + name + ' ([0-9.e+-]+)$', 'm'));
  return m ? +m[1] : NaN;
}

async function main() {
  const server = await startServer(moe, ['--parallel', '8', '--ctx', '256', '--queue', '64', '-t', '2']);
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 120000 });
    const latencies = [];
    let tokens = 0, failed = 0;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: +nClients }, async (_, c) => {
      for (let i = 0; i < +nRequests; ++i) {
        const start = Date.now();
        try {
          const maxTokens = 1 + ((c * 7 + i * 5) % 24);  // 1..24 tokens
          const chat = (c + i) % 2 === 0;
          const prompt = prompts[(c + i) % prompts.length];
          const stream = chat
            ? await client.chat.completions.create({ messages: [{ role: 'user', content: prompt }], max_tokens: maxTokens, stream: true,
                                                    stream_options: { include_usage: true }, temperature: 0.8, seed: c * 100 + i })
            : await client.completions.create({ prompt, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true },
                                                temperature: 0.8, seed: c * 100 + i });
          let finish = null, usage = null;
          for await (const ch of stream) {
            if (ch.usage) usage = ch.usage;
            if (ch.choices.length && ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
          }
          check(finish === 'stop' || finish === 'length', `request ${c}/${i}: finish ${finish}`);
          check(usage && usage.completion_tokens >= 1 && usage.completion_tokens <= maxTokens, `request ${c}/${i}: usage ${JSON.stringify(usage)}`);
          tokens += usage.completion_tokens;
          latencies.push(Date.now() - start);
        } catch (e) {
          ++failed;
          console.error(`request ${c}/${i} failed: ${e.message}`);
        }
      }
    }));
    const secs = (Date.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
    console.log(`serve_load: ${latencies.length}/${nClients * nRequests} requests ok in ${secs.toFixed(1)} s, ` +
                `${tokens} tokens (${(tokens / secs).toFixed(0)} tok/s aggregate), latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
    check(failed === 0 && latencies.length === nClients * nRequests, `${failed} requests failed`);
    let m = await (await fetch(base + '/metrics')).text();
    console.log(`serve_load: mean sequences per step ${metric(m, 'moe_batch_sequences_mean').toFixed(2)}`);

    // 8 clients leave mid-stream; their slots must free at once.
    const before = metric(m, 'moe_generations_cancelled_total');
    await Promise.all(Array.from({ length: 8 }, async (_, c) => {
      const ac = new AbortController();
      const stream = await client.chat.completions.create({ messages: [{ role: 'user', content: 'Tell me a long story.' }], max_tokens: 200,
                                                            stream: true, temperature: 0.8 }, { signal: ac.signal });
      let n = 0;
      try {
        for await (const _ of stream) if (++n === 3 + c) ac.abort();
      } catch (e) { /* the abort */ }
      check(n >= 3 + c, `client ${c} got ${n} chunks before leaving`);
    }));
    let active = NaN, cancelled = NaN;
    const left = Date.now();
    for (let i = 0; i < 100; ++i) {
      m = await (await fetch(base + '/metrics')).text();
      active = metric(m, 'moe_active_sequences');
      cancelled = metric(m, 'moe_generations_cancelled_total') - before;
      if (active === 0 && cancelled === 8) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    check(active === 0, `slots still busy after the clients left: ${active}`);
    check(cancelled === 8, `cancelled generations: ${cancelled}, wanted 8`);
    console.log(`serve_load: 8 clients left mid-stream; all slots free ${Date.now() - left} ms after the last left`);
  } finally {
    await server.stop();
  }
  // One slot and one place in the queue: of three requests at once, the third gets 503 in OpenAI's error shape.
  // Under a memory budget (experts streamed into a cache) /metrics reports the cache's hit rate.
  const small = await startServer(moe, ['--parallel', '1', '--queue', '1', '--ctx', '256', '-t', '2', '--mem-budget', '276M']);
  try {
    const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 40, ignore_eos: true });
    const res = await Promise.all([0, 1, 2].map(() => fetch(`http://127.0.0.1:${small.port}/v1/completions`,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }).then(async (r) => ({ status: r.status, body: await r.json() }))));
    const statuses = res.map((r) => r.status).sort();
    check(JSON.stringify(statuses) === '[200,200,503]', 'statuses ' + JSON.stringify(statuses));
    const busy = res.find((r) => r.status === 503).body.error;
    check(busy.code === 'queue_full' && busy.type === 'server_error', 'queue full error ' + JSON.stringify(busy));
    console.log('serve_load: queue full -> 503');
    const hit = metric(await (await fetch(`http://127.0.0.1:${small.port}/metrics`)).text(), 'moe_expert_cache_hit_rate');
    check(hit > 0 && hit <= 1, 'expert cache hit rate ' + hit);
    console.log(`serve_load: expert cache hit rate ${hit.toFixed(3)} under --mem-budget 276M (20M of weights)`);
  } finally {
    await small.stop();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
