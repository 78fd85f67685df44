/** One replica of a KME as the load balancer sees it. */
export interface ReplicaAddress {
  readonly name: string;
  readonly host: string;
  readonly saePort: number;
  readonly kmePort: number;
}

export interface SiteBalancer {
  readonly kme: string;
  /** Where SAEs connect: the site's one SAE API address. */
  readonly sae: { readonly host: string; readonly port: number };
  /** Where peer KMEs connect: the site's one KME channel address. */
  readonly kmeChannel: { readonly host: string; readonly port: number };
  readonly replicas: readonly ReplicaAddress[];
  /** An absolute path for HAProxy's admin socket (`show servers state`), if wanted. */
  readonly adminSocket?: string;
}

/**
 * An HAProxy configuration that puts a KME's replicas behind one SAE API address and one KME
 * channel address. TLS passes through untouched (mode tcp): SAEs and peer KMEs authenticate the
 * replica, which holds the KME's own certificate, end to end. Any replica serves any request, so
 * plain round robin does; a replica that stops answering is out within about a second, and a
 * connection that found it dead is sent to another (`retries` with `option redispatch`). KME
 * channel connections are long-lived framed streams, hence the long client and server timeouts.
 */
export function haproxyConfig(site: SiteBalancer): string {
  const servers = (port: (r: ReplicaAddress) => number) =>
    site.replicas.map((r) => `    server ${r.name} ${r.host}:${port(r)} check`);
  return [
    `# ${site.kme}: its replicas behind one address per API (written by qks; docs/operations.md)`,
    'global',
    '    log stdout format raw local0 info',
    ...(site.adminSocket ? [`    stats socket "${site.adminSocket}" mode 600 level admin`] : []),
    'defaults',
    '    mode tcp',
    '    log global',
    '    option tcplog',
    '    timeout connect 1s',
    '    timeout client 1h',
    '    timeout server 1h',
    '    retries 2',
    '    option redispatch',
    '    default-server inter 500ms fall 2 rise 2',
    `frontend ${site.kme}-sae-api`,
    `    bind ${site.sae.host}:${site.sae.port}`,
    `    default_backend ${site.kme}-sae-replicas`,
    `frontend ${site.kme}-kme-channel`,
    `    bind ${site.kmeChannel.host}:${site.kmeChannel.port}`,
    `    default_backend ${site.kme}-kme-replicas`,
    `backend ${site.kme}-sae-replicas`,
    '    balance roundrobin',
    ...servers((r) => r.saePort),
    `backend ${site.kme}-kme-replicas`,
    '    balance roundrobin',
    ...servers((r) => r.kmePort),
    '',
  ].join('\n');
}
