import { readFileSync, writeFileSync } from 'node:fs';
import { cliReference, readmeRows } from './help.js';

// `npm run docs:cli`: docs/cli.md, and the command table between the README's markers, from the command specs.
writeFileSync('docs/cli.md', cliReference());
const readme = readFileSync('README.md', 'utf8');
const escape = (cell: string) => cell.replaceAll('|', '\\|');
const table = [
  '| command | what it does |',
  '| --- | --- |',
  ...readmeRows().map(([command, about]) => `| \`${escape(command)}\` | ${escape(about)} |`),
].join('\n');
writeFileSync('README.md', readme.replace(/(<!-- commands -->\n)[\s\S]*?(\n<!-- \/commands -->)/, `$1\n${table}\n$2`));
