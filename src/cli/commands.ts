import type { CommandSpec, Options } from './spec.js';

const LINK = {
  source: {
    type: 'string',
    arg: 'qkd|simulated',
    help: 'the link: the QKD simulator (default) or the shared-seed stand-in',
  },
  'distance-km': { type: 'string', arg: 'KM', help: 'QKD simulator: fibre length (default 25)' },
  rate: {
    type: 'string',
    arg: 'BPS',
    help: 'shared-seed stand-in: secret key rate in bit/s (implies --source simulated)',
  },
} as const satisfies Options;

const TOPOLOGY = {
  topology: {
    type: 'string',
    arg: 'SHAPE|FILE',
    help: 'sites and links: line:N, ring:N, star:N (site a the hub), mesh:N, or a JSON/YAML file (docs/network.md)',
  },
} as const satisfies Options;

/** How an SAE names itself and its KME: `qks sae`, `qks tunnel`, `qks stunnel`. */
const IDENTITY = {
  manifest: {
    type: 'string',
    arg: 'FILE',
    help: 'a manifest of qks demo or qks init: the KME, CA and certificate of --sae',
  },
  sae: { type: 'string', arg: 'ID', help: "this SAE's ID" },
  kme: { type: 'string', arg: 'URL', help: "without --manifest: its KME's SAE API, https://HOST:PORT" },
  ca: { type: 'string', arg: 'FILE', help: "without --manifest: the CA of the KME's certificate" },
  cert: { type: 'string', arg: 'FILE', help: "without --manifest: this SAE's certificate" },
  key: { type: 'string', arg: 'FILE', help: "without --manifest: this SAE's private key" },
  crl: {
    type: 'string',
    arg: 'FILE',
    help: "revocation list for peer SAEs' certificates (default: <ca>.crl.pem beside the CA, if there)",
  },
  issuer: {
    type: 'string',
    arg: 'URL',
    help: 'authenticate with OAuth2 tokens of this issuer (client ID: --sae; secret: QKS_CLIENT_SECRET)',
  },
  'client-secret': { type: 'string', arg: 'SECRET', help: 'the client secret (prefer QKS_CLIENT_SECRET)' },
  resource: { type: 'string', arg: 'AUDIENCE', help: 'the resource indicator to ask tokens for' },
} as const satisfies Options;

const OPERATOR = {
  manifest: {
    type: 'string',
    arg: 'FILE',
    help: 'a manifest of qks demo or qks init: the KMEs and operator certificate',
  },
  kme: { type: 'string', arg: 'URL[,URL...]', help: "without --manifest: the KMEs' SAE API URLs" },
  ca: { type: 'string', arg: 'FILE', help: "without --manifest: the CA of the KMEs' certificates" },
  cert: {
    type: 'string',
    arg: 'FILE',
    help: "an operator certificate (ID in the KMEs' access.operators); with --manifest, instead of its operator",
  },
  key: { type: 'string', arg: 'FILE', help: "the operator certificate's key (with --cert)" },
  issuer: { type: 'string', arg: 'URL', help: 'or a token with the admin scope from this issuer' },
  'client-id': {
    type: 'string',
    arg: 'ID',
    help: "with --issuer: the operator's client ID (secret: QKS_CLIENT_SECRET)",
  },
  'client-secret': { type: 'string', arg: 'SECRET', help: 'the client secret (prefer QKS_CLIENT_SECRET)' },
  resource: { type: 'string', arg: 'AUDIENCE', help: 'the resource indicator to ask tokens for' },
} as const satisfies Options;

const OPERATOR_ABOUT = `Talks to the KMEs as an operator: the operator certificate qks init makes (pki/operators/),
whose ID is in every KME's access.operators, or a token with the admin scope.`;

export const DEMO = {
  names: ['demo'],
  args: '[--dir DIR] [--manifest FILE] [--topology SHAPE|FILE] [--source qkd|simulated] [--distance-km KM] [--rate BPS] [--replicas N]',
  summary: 'two KMEs (or a --topology), two SAEs each, simulated QKD links, and the dashboard, until Ctrl-C',
  about: `Without --dir the deployment lives in a new temporary directory, deleted on exit. With --dir
it is kept, and a later demo with the same --dir runs it again.`,
  options: {
    dir: { type: 'string', arg: 'DIR', help: 'keep the deployment here (reused when it holds a demo)' },
    manifest: { type: 'string', arg: 'FILE', help: 'where to write the manifest (default DIR/manifest.json)' },
    ...TOPOLOGY,
    ...LINK,
    replicas: {
      type: 'string',
      arg: 'N',
      help: "each KME as N replicas on a PostgreSQL of the demo's own, behind HAProxy (simulated links unless --source qkd)",
    },
  },
  docs: 'docs/qkd-link.md',
} as const satisfies CommandSpec;

export const INIT = {
  names: ['init'],
  args: '--dir DIR [--kmes a,b,... | --topology SHAPE|FILE] [--saes-per-kme N] [--host H] [--base-port N | --ports …] [--source …] [--replicas N --postgres URL]',
  summary: 'CAs, certificates, master keys (mode 0600), link seeds, one config per KME, and a manifest',
  about: `Consecutive KMEs are joined by a link, or the links of --topology. KME i listens for SAEs on BASE+i and for its peers on
BASE+1000+i (default BASE 8443); the ports must be free now. DIR/manifest.json then serves
qks sae, qks status and qks dashboard with --manifest.`,
  options: {
    dir: { type: 'string', arg: 'DIR', help: 'a new directory (or an empty one) for the deployment' },
    kmes: { type: 'string', arg: 'ID,ID,...', help: 'KME IDs (default kme-a,kme-b)' },
    ...TOPOLOGY,
    'saes-per-kme': { type: 'string', arg: 'N', help: 'SAE certificates per KME (default 2: sae-a1, sae-a2, ...)' },
    host: { type: 'string', arg: 'H', help: 'the address the KMEs listen on and are reached at (default 127.0.0.1)' },
    'base-port': { type: 'string', arg: 'N', help: 'SAE API on N+i, KME channel on N+1000+i (default 8443)' },
    ports: {
      type: 'string',
      arg: 'auto|SAE:KME,...',
      help: 'auto: ports free now, chosen by the system; or one SAE:KME pair per KME',
    },
    ...LINK,
    'hsm-module': {
      type: 'string',
      arg: 'FILE',
      help: 'master keys as KEKs in a PKCS#11 token (this library), not master.key files (docs/operations.md)',
    },
    'hsm-token': { type: 'string', arg: 'LABEL', help: 'with --hsm-module: the token' },
    replicas: {
      type: 'string',
      arg: 'N',
      help: 'each KME as N processes sharing one PostgreSQL database, behind HAProxy (docs/operations.md)',
    },
    postgres: {
      type: 'string',
      arg: 'URL',
      help: "with --replicas: the PostgreSQL server (postgres://user@host:port); KME k's database is qks_k",
    },
    'hsm-pin-file': {
      type: 'string',
      arg: 'FILE',
      help: "with --hsm-module: the token's PIN, mode 0600 (default: QKS_HSM_PIN when the KMEs start)",
    },
  },
  docs: 'docs/configuration.md',
} as const satisfies CommandSpec;

export const KME = {
  names: ['kme'],
  args: '--config FILE',
  summary: 'runs one KME until SIGINT or SIGTERM',
  options: { config: { type: 'string', arg: 'FILE', help: "the KME's configuration (qks init writes one per KME)" } },
  docs: 'docs/configuration.md',
} as const satisfies CommandSpec;

export const MASTER_KEY = {
  names: ['master-key'],
  args: 'rotate|status --config FILE',
  summary: "a KME's KEK in a PKCS#11 token: rotate it without stopping the KME, or see where a rotation stands",
  about: `For a KME whose configuration has master_key (kind pkcs11). The token's PIN comes from
master_key.pin_file or QKS_HSM_PIN, as for qks kme.`,
  options: { config: { type: 'string', arg: 'FILE', help: "the KME's configuration" } },
  subcommands: [
    {
      name: 'rotate',
      args: '--config FILE',
      summary:
        'a new KEK in the token, current at once; the running KME re-wraps the data keys and destroys the old KEK (or this command does, if the KME is stopped)',
      options: ['config'],
    },
    {
      name: 'status',
      args: '--config FILE',
      summary: "the token's KEKs of this KME and how many data keys each wraps",
      options: ['config'],
    },
  ],
  docs: 'docs/operations.md',
} as const satisfies CommandSpec;

export const PKI = {
  names: ['pki'],
  args: 'create-ca|list|issue|revoke|renew-crl --dir DIR ...',
  summary: "the deployment's CAs: issue SAE and KME certificates, revoke them, renew the revocation lists",
  about: `DIR is a directory made by qks init. Running KMEs reload the revocation lists within a second.`,
  options: {
    dir: { type: 'string', arg: 'DIR', help: 'the deployment (qks init --dir)' },
    sae: { type: 'string', arg: 'ID', help: 'an SAE' },
    kme: { type: 'string', arg: 'ID', help: 'a KME' },
    host: { type: 'string', arg: 'H', help: "issue --kme: the KME's address in its certificate (default 127.0.0.1)" },
    replace: { type: 'boolean', help: 'issue --sae: replace an existing certificate and revoke the old one' },
    serial: { type: 'string', arg: 'HEX', help: "revoke: a certificate's serial number (qks pki list)" },
    ca: { type: 'string', arg: 'sae|kme', help: 'renew-crl: only this CA (default both)' },
    days: { type: 'string', arg: 'N', help: 'renew-crl: valid N more days (default: the lifetime they have)' },
    seconds: { type: 'string', arg: 'N', help: 'renew-crl: valid N more seconds' },
    'if-due': { type: 'boolean', help: 'renew-crl: only lists with less than half their lifetime left (for cron)' },
  },
  subcommands: [
    {
      name: 'create-ca',
      args: '--dir DIR',
      summary: 'the two CAs (SAE CA, KME CA), if not there yet',
      options: ['dir'],
    },
    { name: 'list', args: '--dir DIR', summary: 'every certificate both CAs issued, with its state', options: ['dir'] },
    {
      name: 'issue',
      args: '--dir DIR (--sae ID [--kme ID] [--replace] | --kme ID [--host H])',
      summary: "a new SAE certificate, registered at its KME (--kme); or a KME's channel certificate",
      options: ['dir', 'sae', 'kme', 'host', 'replace'],
    },
    {
      name: 'revoke',
      args: '--dir DIR (--sae ID | --kme ID | --serial HEX)',
      summary: 'revokes a certificate',
      options: ['dir', 'sae', 'kme', 'serial'],
    },
    {
      name: 'renew-crl',
      args: '--dir DIR [--ca sae|kme] [--days N | --seconds N] [--if-due]',
      summary: 'issues the revocation lists again',
      options: ['dir', 'ca', 'days', 'seconds', 'if-due'],
    },
  ],
  docs: 'docs/authentication.md',
} as const satisfies CommandSpec;

export const SAE = {
  names: ['sae'],
  args: 'status|get-key|get-key-with-ids|agree ...',
  summary: "an SAE's side: ETSI calls from scripts, and the SAE-to-SAE key agreement with rotation",
  about: `Who: --manifest FILE --sae ID, or --sae ID --kme URL --ca FILE --cert FILE --key FILE.
Output is JSON lines; key bytes only with --show-keys.`,
  options: {
    ...IDENTITY,
    slave: { type: 'string', arg: 'ID', help: 'the slave SAE' },
    master: { type: 'string', arg: 'ID', help: 'the master SAE that got the keys' },
    number: { type: 'string', arg: 'N', help: 'how many keys (default 1)' },
    size: { type: 'string', arg: 'BITS', help: "key size in bits (default: the KME's)" },
    'key-id': {
      type: 'string',
      multiple: true,
      arg: 'ID[,ID...]',
      help: 'key IDs: comma-separated, or the flag repeated',
    },
    'show-keys': { type: 'boolean', help: 'print key bytes (base64)' },
    role: { type: 'string', arg: 'initiator|responder', help: 'which side of the agreement' },
    peer: { type: 'string', arg: 'ID[,ID...]', help: 'the peer SAE (a responder may accept several)' },
    connect: { type: 'string', arg: 'HOST:PORT', help: "initiator: the responder's address" },
    listen: { type: 'string', arg: 'HOST:PORT', help: 'responder: where to answer' },
    once: { type: 'boolean', help: 'initiator: agree once and exit' },
    'rotate-every': {
      type: 'string',
      arg: 'SECONDS',
      help: 'initiator: a new key this often (default 60; SIGHUP: now)',
    },
    'secrets-file': { type: 'string', arg: 'FILE', help: "keep the current keys in stunnel's PSKsecrets format" },
  },
  subcommands: [
    {
      name: 'status',
      args: '--slave ID',
      summary: 'the ETSI status for a slave SAE',
      options: ['slave'],
    },
    {
      name: 'get-key',
      args: '--slave ID [--number N] [--size BITS] [--show-keys]',
      summary: 'keys for a slave SAE (enc_keys)',
      options: ['slave', 'number', 'size', 'show-keys'],
    },
    {
      name: 'get-key-with-ids',
      args: '--master ID --key-id ID[,ID...] [--show-keys]',
      summary: 'keys a master obtained for this SAE (dec_keys)',
      options: ['master', 'key-id', 'show-keys'],
    },
    {
      name: 'agree',
      args: '--role initiator|responder --peer ID (--connect HOST:PORT | --listen HOST:PORT) ...',
      summary: 'the key agreement with a peer SAE, once or rotating (docs/sae-agreement.md)',
      options: [
        'role',
        'peer',
        'connect',
        'listen',
        'number',
        'size',
        'once',
        'rotate-every',
        'secrets-file',
        'show-keys',
      ],
    },
  ].map((s) => ({ ...s, options: [...Object.keys(IDENTITY), ...s.options] })),
  docs: 'docs/sae-agreement.md',
} as const satisfies CommandSpec;

export const TUNNEL = {
  names: ['tunnel', 'stunnel'],
  args: '--role client|server --peer ID ... (SAE options as for qks sae)',
  summary: 'a TCP tunnel over TLS 1.3 keyed by agreed QKD keys, in this process (tunnel) or through stunnel',
  about: `server: answers the peer's key agreements on --agree; TLS 1.3 PSK on --listen, forwarded to --target.
client: agrees keys with the server side; plaintext on --listen goes over TLS to --server.
client --stdio (no --listen): one connection from stdin/stdout, e.g. ssh -o ProxyCommand='qks tunnel --stdio ...'.
qks stunnel runs a real stunnel (Debian stunnel4) with the same keys and a PSKsecrets file.`,
  options: {
    ...IDENTITY,
    role: { type: 'string', arg: 'client|server', help: 'which end' },
    peer: { type: 'string', arg: 'ID[,ID...]', help: 'the SAE at the other end (a server may accept several)' },
    agree: {
      type: 'string',
      arg: 'HOST:PORT',
      help: 'where the key agreement is answered (server) or reached (client)',
    },
    listen: { type: 'string', arg: 'HOST:PORT', help: 'server: TLS; client: plaintext from applications' },
    target: { type: 'string', arg: 'HOST:PORT', help: 'server: where the plaintext goes' },
    server: { type: 'string', arg: 'HOST:PORT', help: "client: the server's --listen" },
    stdio: {
      type: 'boolean',
      help: 'client, qks tunnel: carry stdin/stdout (ssh ProxyCommand) on a key agreed for it; exit when it closes',
    },
    mode: {
      type: 'string',
      arg: 'psk_ke|psk_dhe_ke',
      help: 'psk_ke (default): the PSK alone; psk_dhe_ke adds (EC)DHE',
    },
    'rotate-every': { type: 'string', arg: 'SECONDS', help: 'client: a new key this often (default 300)' },
    'rotate-uses': { type: 'string', arg: 'N', help: 'client, qks tunnel: a new key after N connections on one key' },
    'rotate-bytes': { type: 'string', arg: 'N', help: 'client, qks tunnel: a new key after N bytes on one key' },
    'max-connection-age': {
      type: 'string',
      arg: 'SECONDS',
      help: 'qks tunnel: older connections end gracefully (client default: twice --rotate-every)',
    },
    'max-connections': { type: 'string', arg: 'N', help: 'qks tunnel: at most N connections at once' },
    dir: { type: 'string', arg: 'DIR', help: "qks stunnel: where stunnel's configuration, secrets and log go" },
    name: { type: 'string', arg: 'NAME', help: 'how the dashboard lists this tunnel (default: role and --listen)' },
    'report-every': { type: 'string', arg: 'SECONDS', help: 'how often the tunnel tells its KME its key (default 30)' },
  },
  docs: 'docs/tls-psk.md',
} as const satisfies CommandSpec;

export const IPSEC = {
  names: ['ipsec'],
  args: '--config FILE',
  summary: "an IPsec gateway's agent: QKD keys as IKEv2 PPKs (RFC 8784) in strongSwan or Libreswan",
  about: `Agrees keys with the peer gateway's agent and installs each as a PPK (PPK_ID = key ID):
strongSwan over VICI, or Libreswan through a secrets file and whack. SIGHUP (initiator): rotate now.`,
  options: { config: { type: 'string', arg: 'FILE', help: "the agent's configuration (docs/ipsec.md)" } },
  docs: 'docs/ipsec.md',
} as const satisfies CommandSpec;

export const DASHBOARD = {
  names: ['dashboard'],
  args: '--manifest FILE | --kme URL,... --ca FILE --cert FILE --key FILE [--listen HOST:PORT]',
  summary: 'the operator dashboard for several KMEs, on loopback',
  about: OPERATOR_ABOUT,
  options: {
    ...OPERATOR,
    listen: { type: 'string', arg: 'HOST:PORT', help: 'where to serve it (default 127.0.0.1, a free port)' },
  },
  docs: 'docs/dashboard.md',
} as const satisfies CommandSpec;

export const STATUS = {
  names: ['status'],
  args: '[--once] [--interval SECONDS] --manifest FILE | --kme URL,... ...',
  summary: "the dashboard's numbers in the terminal, redrawn every second",
  about: OPERATOR_ABOUT,
  options: {
    ...OPERATOR,
    once: { type: 'boolean', help: 'print once and exit: 0 if every KME answered, 1 if not' },
    interval: { type: 'string', arg: 'SECONDS', help: 'redraw this often (default 1)' },
  },
  docs: 'docs/dashboard.md',
} as const satisfies CommandSpec;

export const CONTROLLER = {
  names: ['controller'],
  args: '--config FILE',
  summary: 'the SDN controller: reads the KMEs over ETSI 015, computes paths, serves PCEP',
  options: {
    config: { type: 'string', arg: 'FILE', help: 'the controller configuration (qks init writes controller.json)' },
  },
  docs: 'docs/sdn.md',
} as const satisfies CommandSpec;

export const SERVICE = {
  names: ['service'],
  args: 'create|list|delete|run ...',
  summary: "end-to-end encrypted services through the SDN controller (the slides' parameters)",
  about: `create: the controller computes and installs the path; run: one end of it (the source agrees
keys and reports the first key ID as the handle; the destination answers). Layer 4: the TLS tunnel;
layer 3: the IPsec agent (qks ipsec) with the gateway's configuration.`,
  options: {
    ...IDENTITY,
    manifest: {
      type: 'string',
      arg: 'FILE',
      help: "a manifest of qks demo: its controller, and for run the SAE's KME, CA and certificate",
    },
    controller: { type: 'string', arg: 'URL', help: "the controller's API (default: the manifest's controller)" },
    id: { type: 'string', arg: 'ID', help: 'the service' },
    source: { type: 'string', arg: 'SAE', help: 'create: the SAE that starts the service' },
    destination: { type: 'string', arg: 'SAE', help: 'create: the SAE at the other end' },
    layer: { type: 'string', arg: '3|4', help: 'create: 3 IPsec PPKs, 4 the TLS tunnel' },
    'key-length': { type: 'string', arg: 'BYTES', help: 'create: bytes per key (default 32)' },
    'refresh-type': { type: 'string', arg: 'time|traffic', help: 'create: a new key by time or by bytes carried' },
    'refresh-value': { type: 'string', arg: 'N', help: 'create: seconds, or bytes' },
    algorithm: { type: 'string', arg: 'N', help: "create: the slides' algorithm field (recorded)" },
    agree: {
      type: 'string',
      arg: 'HOST:PORT',
      help: 'run: where the key agreement is answered (destination) or reached',
    },
    listen: { type: 'string', arg: 'HOST:PORT', help: 'run: destination TLS; source plaintext from applications' },
    target: { type: 'string', arg: 'HOST:PORT', help: 'run, destination: where the plaintext goes' },
    server: { type: 'string', arg: 'HOST:PORT', help: "run, source: the destination's --listen" },
    'ipsec-config': {
      type: 'string',
      arg: 'FILE',
      help: "run, layer 3: this gateway's qks ipsec configuration (the service sets its SAE, peer, role, rotation)",
    },
  },
  subcommands: [
    {
      name: 'create',
      args: '--source SAE --destination SAE --layer 3|4 --refresh-type time|traffic --refresh-value N ...',
      summary: 'asks the controller for a service',
      options: [
        'controller',
        'manifest',
        'source',
        'destination',
        'layer',
        'key-length',
        'refresh-type',
        'refresh-value',
        'algorithm',
      ],
    },
    { name: 'list', args: '', summary: "the controller's services", options: ['controller', 'manifest'] },
    {
      name: 'delete',
      args: '--id ID',
      summary: 'removes a service and its path',
      options: ['controller', 'manifest', 'id'],
    },
    {
      name: 'run',
      args: '--id ID --sae SAE (--agree HOST:PORT --listen HOST:PORT (--server | --target) HOST:PORT | --ipsec-config FILE)',
      summary: 'runs one end of a service until SIGINT or SIGTERM',
      options: [...Object.keys(IDENTITY), 'controller', 'id', 'agree', 'listen', 'target', 'server', 'ipsec-config'],
    },
  ],
  docs: 'docs/sdn.md',
} as const satisfies CommandSpec;

/** Every command, in the order of the usage text and the README. */
export const COMMANDS: readonly CommandSpec[] = [
  DEMO,
  INIT,
  KME,
  MASTER_KEY,
  PKI,
  SAE,
  TUNNEL,
  IPSEC,
  DASHBOARD,
  STATUS,
  CONTROLLER,
  SERVICE,
];
