// `moe serve` driven by OpenAI's official Node client (npm `openai`, pinned in tests/npm/package.json): models,
// plain and streamed chat, completions, logprobs, stop strings, the "moe" extension, errors, /metrics, and a
// SIGTERM that lets the request in flight finish. The chat text at temperature 0 must be what
// `moe run --chat --temp 0` prints for the same message.
// Usage: node serve_openai.cjs MOE_BINARY [NPM_DIR]
'use strict';
const { execFileSync } = require('child_process');
const { npmRequire, startServer, check, defaultNpmDir } = require('./serve/server_process.cjs');

const [moe, npmDir = defaultNpmDir()] = process.argv.slice(2);
const OpenAI = npmRequire(npmDir, 'openai').default || npmRequire(npmDir, 'openai');

async function expectError(promise, status, what) {
  try {
    await promise;
  } catch (e) {
    check(e.status === status, `${what}: status ${e.status}, wanted ${status} (${e.message})`);
    return e;
  }
  throw new Error(`${what}: no error`);
}

let stage = 'start';
async function main() {
  const server = await startServer(moe, ['--parallel', '4', '--ctx', '256', '-t', '2']);
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    stage = 'models';
    const models = await client.models.list();
    check(models.data.length === 1 && models.data[0].id === 'default', 'models: ' + JSON.stringify(models.data));

    stage = 'chat';
    // Plain chat at temperature 0 = `moe run --chat --temp 0`.
    const question = 'What is the capital of France?';
    const cli = execFileSync(moe, ['run', '--chat', '-p', question, '--temp', '0', '-n', '20', '-t', '2'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const chat = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 20 });
    const text = chat.choices[0].message.content;
    check(chat.object === 'chat.completion' && chat.choices[0].message.role === 'assistant', 'chat shape');
    check(text.length > 0 && text === cli.replace(/\n$/, ''), `chat text ${JSON.stringify(text)} != moe run ${JSON.stringify(cli)}`);
    check(chat.usage.prompt_tokens > 0 && chat.usage.completion_tokens > 0 &&
          chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens, 'usage ' + JSON.stringify(chat.usage));
    check(['stop', 'length'].includes(chat.choices[0].finish_reason), 'finish_reason');

    stage = 'second turn';
    // A second turn re-evaluates only what the slot holding the first one does not have.
    const turn2 = await client.chat.completions.create({ messages: [{ role: 'user', content: question }, { role: 'assistant', content: text },
                                                                    { role: 'user', content: 'And then?' }], temperature: 0, max_tokens: 4 });
    check(turn2.usage.prompt_tokens_details.cached_tokens >= chat.usage.prompt_tokens,
          `cached ${turn2.usage.prompt_tokens_details.cached_tokens} of the first turn's ${chat.usage.prompt_tokens} prompt tokens`);

    stage = 'stream';
    // Streamed: the same text in deltas, usage in a last chunk with no choices.
    const stream = await client.chat.completions.create({ messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 20,
                                                          stream: true, stream_options: { include_usage: true } });
    let streamed = '', chunks = 0, usage = null, finish = null;
    for await (const c of stream) {
      ++chunks;
      if (c.usage) usage = c.usage;
      if (c.choices.length && c.choices[0].delta.content) streamed += c.choices[0].delta.content;
      if (c.choices.length && c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
    }
    check(streamed === text, `streamed ${JSON.stringify(streamed)} != ${JSON.stringify(text)}`);
    check(chunks > 3 && finish === chat.choices[0].finish_reason, `chunks ${chunks}, finish ${finish}`);
    check(usage && usage.completion_tokens === chat.usage.completion_tokens, 'stream usage ' + JSON.stringify(usage));

    stage = 'logprobs';
    // Logprobs: at temperature 0 the chosen token is the most likely one.
    const lp = await client.chat.completions.create({ messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 5,
                                                      logprobs: true, top_logprobs: 3 });
    const content = lp.choices[0].logprobs.content;
    check(content.length === lp.usage.completion_tokens, 'one logprob per token');
    for (const t of content) {
      check(t.top_logprobs.length === 3 && t.logprob <= 0, 'top_logprobs ' + JSON.stringify(t));
      check(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-5, 'greedy token is the top one');
    }

    stage = 'stop';
    // Stop string: the text ends just before it.
    if (text.length > 6) {
      const stop = text.slice(3, 6);
      const st = await client.chat.completions.create({ messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 20, stop: [stop] });
      check(st.choices[0].message.content === text.slice(0, text.indexOf(stop)) && st.choices[0].finish_reason === 'stop',
            `stop ${JSON.stringify(stop)}: ${JSON.stringify(st.choices[0].message.content)}`);
    }

    stage = 'completions';
    // Completions, plain and streamed, with a token limit.
    const comp = await client.completions.create({ model: 'default', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
    check(comp.object === 'text_completion' && comp.choices[0].text.length > 0 && comp.usage.completion_tokens <= 12, 'completion');
    let ctext = '';
    for await (const c of await client.completions.create({ prompt: 'Once upon a time', max_tokens: 12, temperature: 0, stream: true }))
      ctext += c.choices.length ? c.choices[0].text : '';
    check(ctext === comp.choices[0].text, `streamed completion ${JSON.stringify(ctext)} != ${JSON.stringify(comp.choices[0].text)}`);

    stage = 'seed';
    // Sampling with a seed is repeatable.
    const s1 = await client.completions.create({ prompt: 'The sea', max_tokens: 10, temperature: 1, seed: 7, top_p: 0.9 });
    const s2 = await client.completions.create({ prompt: 'The sea', max_tokens: 10, temperature: 1, seed: 7, top_p: 0.9 });
    check(s1.choices[0].text === s2.choices[0].text, 'same seed, same text');

    stage = 'moe';
    // Expert controls and statistics (the "moe" extension passes through the client).
    const k1 = await client.chat.completions.create({ messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 4,
                                                      moe: { experts_k: 1, stats: true } });
    check(k1.moe && k1.moe.experts_per_token === 1 && k1.moe.layers.length > 0, 'moe stats ' + JSON.stringify(k1.moe));

    stage = 'errors';
    // Errors: OpenAI's shape and status, raised by the client as APIError.
    let e = await expectError(client.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], temperature: 5 }), 400, 'temperature 5');
    check(e.param === 'temperature' && e.type === 'invalid_request_error', 'error param/type ' + JSON.stringify(e.error));
    e = await expectError(client.chat.completions.create({ messages: [{ role: 'user', content: 'word '.repeat(400) }] }), 400, 'long prompt');
    check(/context holds 256/.test(e.message) && e.code === 'context_length_exceeded', 'context error: ' + e.message);
    e = await expectError(client.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], moe: { ban: ['9:99'] } }), 400, 'bad ban');
    check(e.param === 'moe.ban', 'ban param');
    e = await expectError(client.chat.completions.create({ messages: [] }), 400, 'no messages');
    let r = await fetch(base + '/v1/chat/completions', { method: 'POST', body: '{"messages": [', headers: { 'Content-Type': 'application/json' } });
    check(r.status === 400 && (await r.json()).error.code === 'invalid_json', 'bad JSON');
    stage = 'body limit';
    r = await fetch(base + '/v1/chat/completions', { method: 'POST', body: 'x'.repeat(2 << 20) });
    check(r.status === 413 && (await r.json()).error.message.includes('limit'), 'body limit: ' + r.status);
    r = await fetch(base + '/v1/nothing');
    check(r.status === 404 && (await r.json()).error.type === 'not_found_error', 'unknown path');
    r = await fetch(base + '/health');
    check(r.status === 200 && (await r.json()).status === 'ok', 'health');
    const metrics = await (await fetch(base + '/metrics')).text();
    check(/moe_requests_total\{endpoint="\/v1\/chat\/completions",status="200"\} \d+/.test(metrics), 'metrics requests');
    check(/moe_generated_tokens_total [1-9]/.test(metrics) && /moe_queue_length 0/.test(metrics) && /moe_batch_sequences_mean/.test(metrics), 'metrics');
    check(/moe_requests_total\{endpoint="\/v1\/chat\/completions",status="400"\} [1-9]/.test(metrics), 'metrics counts errors');

    stage = 'sigterm';
    // SIGTERM mid-stream: the stream still ends normally, then the server exits 0.
    const long = await client.chat.completions.create({ messages: [{ role: 'user', content: 'Tell me a long story.' }], max_tokens: 60,
                                                        temperature: 0.7, stream: true });
    let n = 0, ended = null;
    for await (const c of long) {
      if (++n === 3) server.proc.kill('SIGTERM');
      if (c.choices.length && c.choices[0].finish_reason) ended = c.choices[0].finish_reason;
    }
    check(ended !== null, 'stream in flight finished after SIGTERM');
    const exit = await server.exited;
    check(exit.code === 0, `exit after SIGTERM: ${JSON.stringify(exit)}\n${server.stderr()}`);
    console.log(`serve_openai: ok (chat ${JSON.stringify(text)}, ${chunks} chunks)`);
  } finally {
    await server.stop();
  }
}

main().catch((e) => {
  console.error(`serve_openai: failed at stage '${stage}'`);
  console.error(e.stack || String(e));
  process.exit(1);
});
