#!/usr/bin/env node
// A `solc`-compatible front for solc-js (WASM), because no native solc installs on these
// machines and py-solc-x expects a native binary's command line. It answers only what
// py-solc-x sends: --version, and --standard-json with import-path flags.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('solc-js.cjs: only --version and --standard-json are supported\n');
  process.exit(2);
}

const roots = [];
for (const flag of ['--base-path', '--include-path', '--allow-paths']) {
  args.forEach((arg, i) => {
    if (arg === flag && args[i + 1]) roots.push(...args[i + 1].split(','));
  });
}
roots.push(process.cwd());

// Imports resolve against the given roots only; anything else is reported to the compiler,
// which turns it into an ordinary "Source not found" error.
function findImports(importPath) {
  for (const root of roots) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  return { error: `File not found under ${roots.join(', ')}` };
}

const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImports }));
