import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as prettier from 'prettier';
import { COMMANDS } from '../../src/cli/commands.js';
import { cliReference, commandUsage, readmeRows, subcommandUsage, topUsage } from '../../src/cli/help.js';
import { qksInvocation, shellQuote } from '../../src/cli/shell.js';
import { flagsIn } from '../../src/cli/spec.js';
import type { KmeConfig } from '../../src/kme/config.js';
import type { Manifest } from '../../src/cli/manifest.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const qks = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
const HELP_FORMS = [['--help'], ['-h'], ['help']];

/** Exit 2 and exactly this one line on stderr. */
function refused(args: string[], line: string) {
  const run = qks(...args);
  assert.equal(run.stderr, `${line}\n`, `qks ${args.join(' ')}`);
  assert.equal(run.status, 2, `qks ${args.join(' ')}`);
  assert.equal(run.stdout, '');
}

describe('qks help, from the one table of commands', () => {
  it('every command answers --help, -h and help with its own usage, exit 0', () => {
    for (const spec of COMMANDS) {
      for (const name of spec.names) {
        for (const form of [...HELP_FORMS, ['--dir', 'x', '--help']]) {
          const run = qks(name, ...form);
          assert.equal(run.status, 0, `qks ${name} ${form.join(' ')}: ${run.stderr}`);
          assert.equal(run.stdout, commandUsage(spec), `qks ${name} ${form.join(' ')}`);
        }
        assert.equal(qks('help', name).stdout, commandUsage(spec));
      }
    }
  });

  it('every subcommand answers --help, -h and help with its own usage, listing only its options', () => {
    for (const spec of COMMANDS) {
      for (const sub of spec.subcommands ?? []) {
        for (const form of HELP_FORMS) {
          const run = qks(spec.names[0]!, sub.name, ...form);
          assert.equal(run.status, 0, `qks ${spec.names[0]} ${sub.name} ${form.join(' ')}: ${run.stderr}`);
          assert.equal(run.stdout, subcommandUsage(spec, sub));
        }
        const listed = flagsIn(subcommandUsage(spec, sub).split('Options:')[1]!);
        assert.deepEqual(new Set(listed), new Set(sub.options), `${spec.names[0]} ${sub.name}`);
      }
    }
  });

  it('top-level usage, --version, unknown commands and subcommands', () => {
    for (const form of HELP_FORMS) assert.equal(qks(form[0]!).stdout, topUsage());
    const helpHelp = qks('help', 'help');
    assert.equal(helpHelp.status, 0, 'qks help help: the usage text names help [COMMAND]');
    assert.equal(helpHelp.stdout, topUsage());
    const bare = qks();
    assert.equal(bare.status, 2);
    assert.equal(bare.stdout, topUsage());
    const version = qks('--version');
    assert.equal(version.status, 0);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    assert.equal(version.stdout, `qks ${pkg.version}\n`);
    const all = 'demo, init, kme, master-key, pki, sae, tunnel, stunnel, ipsec, dashboard, status, controller, service';
    refused(['frobnicate'], `qks: unknown command "frobnicate"; the commands are ${all} (qks --help)`);
    refused(['help', 'frobnicate'], `qks: unknown command "frobnicate"; the commands are ${all} (qks --help)`);
    refused(
      ['sae', 'foo'],
      'qks sae: unknown sae command "foo"; the sae commands are status, get-key, get-key-with-ids, agree (qks sae --help)',
    );
    refused(
      ['pki', 'frob', '--dir', 'x'],
      'qks pki: unknown pki command "frob"; the pki commands are create-ca, list, issue, revoke, renew-crl (qks pki --help)',
    );
    refused(
      ['pki', '--dir', 'x', 'list'],
      'qks pki: the pki command comes before the options (qks pki COMMAND --option ...): create-ca, list, issue, revoke, renew-crl (qks pki --help)',
    );
    // A command that needs a subcommand and got none shows its usage, and fails.
    const pki = qks('pki');
    assert.equal(pki.status, 2);
    assert.match(pki.stdout, /^Usage: qks pki /);
  });

  it('says what is wrong with a command line in one line that names the command', () => {
    refused(['pki', 'list'], 'qks pki list: --dir DIR is required (qks pki list --help)');
    refused(['demo', '--colour', 'blue'], 'qks demo: unknown option --colour for qks demo (qks demo --help)');
    refused(['demo', 'now'], 'qks demo: unexpected argument "now": qks demo takes only --options (qks demo --help)');
    refused(['demo', '--rate'], 'qks demo: --rate needs a value (qks demo --help)');
    refused(['demo', '--source', 'laser'], 'qks demo: --source must be qkd or simulated (qks demo --help)');
    refused(
      ['sae', 'get-key', '--master', 'sae-a1'],
      'qks sae get-key: --master is not an option of qks sae get-key; qks sae get-key-with-ids takes it (qks sae get-key --help)',
    );
    refused(
      ['sae', 'agree', '--rotate-uses', '3'],
      'qks sae agree: unknown option --rotate-uses for qks sae agree; qks tunnel|stunnel takes it (qks sae agree --help)',
    );
    refused(
      ['sae', 'status', '--sae', 'sae-a1', '--manifest', '/nonexistent/manifest.json', '--slave', 'sae-b1'],
      'qks sae status: --manifest /nonexistent/manifest.json: no such file; qks demo writes it when ready, qks init as DIR/manifest.json',
    );
    refused(['kme'], 'qks kme: --config FILE is required (qks kme --help)');
  });

  it('usage lines name only options the commands take, and point to documents that exist', () => {
    for (const spec of COMMANDS) {
      for (const flag of flagsIn(spec.args)) assert.ok(flag in spec.options, `qks ${spec.names[0]} --${flag}`);
      for (const sub of spec.subcommands ?? []) {
        for (const flag of flagsIn(sub.args)) assert.ok(sub.options.includes(flag), `${sub.name} --${flag}`);
        for (const o of sub.options) assert.ok(o in spec.options, `${sub.name} lists --${o}`);
      }
      const text = [spec.about ?? '', ...Object.values(spec.options).map((o) => o.help)].join(' ');
      for (const doc of [spec.docs, ...text.matchAll(/docs\/[\w.-]+/g)].flat()) {
        if (doc) assert.ok(existsSync(String(doc)), `${doc} exists`);
      }
    }
  });

  it("the README's command table and docs/cli.md are the ones the table makes", async () => {
    const readme = readFileSync('README.md', 'utf8');
    const table = /<!-- commands -->([\s\S]*?)<!-- \/commands -->/.exec(readme)?.[1] ?? '';
    const rows = table
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) =>
        l
          .slice(1, -1)
          .split(/(?<!\\)\|/)
          .map((c) => c.trim().replaceAll('\\|', '|')),
      );
    const stale = 'out of date: npm run docs:cli';
    assert.deepEqual(
      rows,
      readmeRows().map(([c, about]) => [`\`${c}\``, about]),
      `README.md ${stale}`,
    );
    const options = (await prettier.resolveConfig('docs/cli.md')) ?? {};
    const expected = await prettier.format(cliReference(), { ...options, parser: 'markdown' });
    assert.equal(readFileSync('docs/cli.md', 'utf8'), expected, `docs/cli.md ${stale}`);
  });
});

describe('bin/qks.js before anything is loaded', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-bin-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('without a build says what to run, in one line', () => {
    mkdirSync(join(dir, 'bin'));
    copyFileSync(BIN, join(dir, 'bin', 'qks.js'));
    copyFileSync('package.json', join(dir, 'package.json'));
    const run = spawnSync(process.execPath, [join(dir, 'bin', 'qks.js'), 'demo'], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.equal(run.stderr, `qks: not built yet: run \`npm ci\` (or \`npm run build\`) in ${dir}/\n`);
  });

  it('on a Node.js older than package.json allows, says which is needed', () => {
    const minimum = (JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } }).engines.node;
    assert.equal(minimum, '>=20.19', 'eslint 10, a test dependency, needs 20.19');
    const fake = 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.18.9"})';
    const run = spawnSync(process.execPath, ['--import', fake, BIN, '--version'], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.equal(run.stderr, `qks: needs Node.js 20.19 or later; this is 20.18.9 (${process.execPath})\n`);
    assert.equal(qks('--version').status, 0, `this Node.js, ${process.version}, is new enough`);
  });
});

describe('qks on the PATH', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-path-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('npm link puts qks on the PATH, and npx qks runs it in the checkout, as the README says', () => {
    const link = spawnSync('npm', ['link', '--ignore-scripts', '--no-audit', '--no-fund'], {
      encoding: 'utf8',
      env: { ...process.env, npm_config_prefix: dir },
    });
    assert.equal(link.status, 0, link.stderr);
    const run = spawnSync('qks', ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env['PATH']}` },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^qks \d+\.\d+\.\d+\n$/);
    const npx = spawnSync('npx', ['--no-install', 'qks', '--version'], { encoding: 'utf8' });
    assert.equal(npx.stdout, run.stdout, 'and npx qks runs it inside the checkout');
  });

  it('what the demo prints to run qks: qks on the PATH, or node and its path', () => {
    const bin = join(dir, 'path-bin');
    mkdirSync(bin);
    symlinkSync(BIN, join(bin, 'qks'));
    const saved = process.env['PATH'];
    try {
      process.env['PATH'] = `${bin}:/usr/bin:/bin`;
      assert.equal(qksInvocation(BIN), 'qks');
      process.env['PATH'] = '/usr/bin:/bin';
      assert.equal(qksInvocation(BIN), `node ${shellQuote(BIN)}`);
    } finally {
      process.env['PATH'] = saved;
    }
    assert.equal(shellQuote('https://h:1/a?b=1'), "'https://h:1/a?b=1'");
    assert.equal(shellQuote("it's"), "'it'\\''s'");
    assert.equal(shellQuote('/tmp/a-b_c.pem'), '/tmp/a-b_c.pem');
  });
});

describe('qks init ports and manifest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-init-ports-'));
  let busy: Server | undefined;
  after(() => {
    busy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const configOf = (site: string, kme: string) =>
    JSON.parse(readFileSync(join(site, `${kme}.json`), 'utf8')) as KmeConfig;

  it('--base-port N: SAE API on N+i, KME channel on N+1000+i, and a manifest that names them', () => {
    const site = join(dir, 'base');
    const run = qks(
      'init',
      '--dir',
      site,
      '--base-port',
      '20443',
      '--kmes',
      'kme-a,kme-b,kme-c',
      '--source',
      'simulated',
    );
    assert.equal(run.status, 0, run.stderr);
    const manifest = JSON.parse(readFileSync(join(site, 'manifest.json'), 'utf8')) as Manifest;
    for (const [i, kme] of ['kme-a', 'kme-b', 'kme-c'].entries()) {
      const c = configOf(site, kme);
      assert.deepEqual([c.sae_api.port, c.kme_api.port], [20443 + i, 21443 + i]);
      assert.equal(manifest.kmes[i]!.url, `https://127.0.0.1:${20443 + i}`);
      assert.equal(manifest.kmes[i]!.config, join(site, `${kme}.json`));
    }
    assert.equal(configOf(site, 'kme-b').peers.find((p) => p.kme_id === 'kme-c')!.url, 'https://127.0.0.1:21445');
    assert.equal(manifest.saes.length, 6);
    assert.ok(manifest.operator && existsSync(manifest.operator.cert) && existsSync(manifest.ca));
    assert.match(run.stdout, new RegExp(`manifest .*: ${join(site, 'manifest.json')}`));
  });

  it('--ports auto and --ports SAE:KME,...; a taken port is named with the fix', async () => {
    const auto = join(dir, 'auto');
    assert.equal(qks('init', '--dir', auto, '--ports', 'auto').status, 0);
    const ports = ['kme-a', 'kme-b'].flatMap((k) => [configOf(auto, k).sae_api.port, configOf(auto, k).kme_api.port]);
    assert.equal(new Set(ports).size, 4);

    const explicit = join(dir, 'explicit');
    assert.equal(qks('init', '--dir', explicit, '--ports', '30001:30002,30003:30004').status, 0);
    assert.deepEqual(
      [configOf(explicit, 'kme-b').sae_api.port, configOf(explicit, 'kme-b').kme_api.port],
      [30003, 30004],
    );

    refused(
      ['init', '--dir', join(dir, 'x'), '--ports', '1:2'],
      'qks init: --ports gives 1 pairs for 2 KMEs (kme-a, kme-b) (qks init --help)',
    );
    refused(
      ['init', '--dir', join(dir, 'x'), '--ports', 'auto', '--base-port', '9000'],
      'qks init: give --base-port or --ports, not both (qks init --help)',
    );
    busy = createServer();
    const port = await new Promise<number>((resolve) =>
      busy!.listen(0, '127.0.0.1', () => resolve((busy!.address() as { port: number }).port)),
    );
    refused(
      ['init', '--dir', join(dir, 'taken'), '--base-port', String(port)],
      `qks init: port ${port} on 127.0.0.1 (kme-a's SAE API) is in use; choose free ones with --base-port N or --ports auto (qks init --help)`,
    );
    assert.equal(existsSync(join(dir, 'taken', 'kme-a.json')), false, 'nothing written');
  });
});
