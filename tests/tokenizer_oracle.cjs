// Reference token ids for test_tokenizer_vectors, from two JavaScript tokenizers installed by scripts/setup.sh
// (npm, outside the source tree; tests/npm/package.json pins them):
//   json:PATH          transformers.js's tokenizers (@lenml/tokenizers) running a Hugging Face tokenizer.json
//   tiktoken:NAME      OpenAI's tiktoken (its Rust BPE compiled to WASM) with a built-in encoding (o200k_base)
// Usage: node tokenizer_oracle.cjs NPM_DIR MODEL TEXTS.json OUT.json
//   TEXTS.json is an array of strings; OUT.json gets an array of id arrays (no BOS/EOS added; special tokens
//   that appear in the text are matched, as Hugging Face's encode(add_special_tokens=False) does).
// node tokenizer_oracle.cjs NPM_DIR --check   exits 0 when every pinned package is installed at its version.
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

function die(msg) {
  process.stderr.write(`tokenizer_oracle: ${msg}\n`);
  process.exit(1);
}

const [npmDir, model, textsPath, outPath] = process.argv.slice(2);
if (!npmDir || !model) die('usage: node tokenizer_oracle.cjs NPM_DIR (json:PATH | tiktoken:NAME | --check) TEXTS.json OUT.json');
// Modules resolve from NPM_DIR/node_modules, whatever folder this script is in.
const requireOracle = createRequire(path.join(path.resolve(npmDir), 'oracle.cjs'));

function checkInstalled() {
  const pinned = JSON.parse(fs.readFileSync(path.join(__dirname, 'npm', 'package.json'), 'utf8')).dependencies;
  const missing = [];
  for (const [name, version] of Object.entries(pinned)) {
    const file = path.join(npmDir, 'node_modules', name, 'package.json');
    const have = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).version : null;
    if (have !== version) missing.push(`${name}@${version}` + (have ? ` (found ${have})` : ''));
  }
  return missing;
}

if (model === '--check') {
  const missing = checkInstalled();
  if (missing.length) die(`not installed in ${npmDir}: ${missing.join(', ')}`);
  process.exit(0);
}
if (!textsPath || !outPath) die('TEXTS.json and OUT.json are required');
const missing = checkInstalled();
if (missing.length) die(`not installed in ${npmDir}: ${missing.join(', ')} (run scripts/setup.sh)`);

const texts = JSON.parse(fs.readFileSync(textsPath, 'utf8'));
if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) die(`${textsPath} is not an array of strings`);

let encode;
if (model.startsWith('json:')) {
  const jsonPath = model.slice(5);
  const cfgPath = path.join(path.dirname(jsonPath), 'tokenizer_config.json');
  const { TokenizerLoader } = requireOracle('@lenml/tokenizers');
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(jsonPath, 'utf8')),
    tokenizerConfig: fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, 'utf8')) : {},
  });
  encode = (t) => tok.encode(t, { add_special_tokens: false });
} else if (model.startsWith('tiktoken:')) {
  const { get_encoding } = requireOracle('tiktoken');
  const enc = get_encoding(model.slice(9));
  encode = (t) => Array.from(enc.encode(t, 'all'));
} else {
  die(`unknown model '${model}' (json:PATH or tiktoken:NAME)`);
}

const ids = texts.map(encode);
const tmp = `${outPath}.tmp${process.pid}`;
fs.writeFileSync(tmp, JSON.stringify(ids));
fs.renameSync(tmp, outPath);
