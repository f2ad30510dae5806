// Starts `moe serve` on a free loopback port for the node tests and finds the npm packages they use.
'use strict';
const { spawn } = require('child_process');
const path = require('path');
const fs = require('fs');
const { createRequire } = require('module');

// Packages come from the folder scripts/setup.sh installs tests/npm/package.json into.
function npmRequire(npmDir, name) {
  const req = createRequire(path.join(path.resolve(npmDir), 'serve.cjs'));
  try {
    return req(name);
  } catch (e) {
    throw new Error(`npm package '${name}' is not installed in ${npmDir}: run scripts/setup.sh (or point MOE_NPM_ORACLE at its folder)`);
  }
}

// Resolves to {port, proc, stderr(), stop()} once the server prints its address.
function startServer(moe, args = [], timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const proc = spawn(moe, ['serve', '--port', '0', '--host', '127.0.0.1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let done = false;
    const timer = setTimeout(() => { if (!done) { done = true; proc.kill('SIGKILL'); reject(new Error('server did not start:\n' + err)); } }, timeoutMs);
    proc.stderr.on('data', (d) => {
      err += d.toString();
      const m = err.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        const exited = new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal })));
        resolve({
          port: +m[1], proc, exited,
          stderr: () => err,
          stop: async () => { if (proc.exitCode === null) proc.kill('SIGKILL'); return exited; },
        });
      }
    });
    proc.on('exit', (code) => { if (!done) { done = true; clearTimeout(timer); reject(new Error(`server exited (${code}):\n${err}`)); } });
  });
}

function check(cond, msg) {
  if (!cond) throw new Error('check failed: ' + msg);
}

function defaultNpmDir() {
  return process.env.MOE_NPM_ORACLE || '/opt/moe-oracle';
}

module.exports = { npmRequire, startServer, check, defaultNpmDir, fs };
