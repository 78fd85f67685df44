#!/usr/bin/env node
// Checked before anything is loaded, so that each failure is one line that says what to do.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const { engines } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
const minimum = engines.node.replace(/^>=\s*/, '');
const older = (a, b) => {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
  return false;
};
if (older(process.versions.node, minimum)) {
  process.stderr.write(
    `qks: needs Node.js ${minimum} or later; this is ${process.versions.node} (${process.execPath})\n`,
  );
  process.exit(2);
}
const main = new URL('dist/src/cli/main.js', root);
if (!existsSync(main)) {
  process.stderr.write(`qks: not built yet: run \`npm ci\` (or \`npm run build\`) in ${fileURLToPath(root)}\n`);
  process.exit(2);
}
await import(main.href);
