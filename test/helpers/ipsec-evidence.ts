/** What the daemons' logs and a capture show of PPK use, for the IPsec tests. */

/** IKEv2 notify USE_PPK (RFC 8784); tshark 4.0 calls it "RESERVED TO IANA". */
export const USE_PPK = 16435;
/** IKEv2 exchange type IKE_SA_INIT. */
export const IKE_SA_INIT = 34;

/** The PPK_IDs a responding pluto extracted, in order, from its debug log's hex dumps. */
export function ppkIdsSeen(plutoLog: string): string[] {
  const ids: string[] = [];
  const lines = plutoLog.split('\n');
  lines.forEach((line, i) => {
    if (!line.includes('| Extracted PPK_ID')) return;
    let hex = '';
    for (let j = i + 1; j < lines.length && /\|\s+([0-9a-f]{2}\s+)+/.test(lines[j]!); j++) {
      hex += (/\|\s+((?:[0-9a-f]{2}\s+)+)/.exec(lines[j]!)![1] ?? '').replace(/\s+/g, '');
    }
    ids.push(Buffer.from(hex, 'hex').toString('latin1'));
  });
  return ids;
}

/**
 * charon's IKE SAs (unique IDs) with the PPK_ID each was authenticated with, from its log: the
 * thread that logs `using PPK for PPK_ID '…'` logs `IKE_SA name[ID] established` next.
 */
export function charonPpkIds(charonLog: string): Map<string, string> {
  const pending = new Map<string, string>();
  const sas = new Map<string, string>();
  for (const line of charonLog.split('\n')) {
    const ppk = /^(\d+)\[CFG\] using PPK for PPK_ID '([^']+)'/.exec(line);
    if (ppk) pending.set(ppk[1]!, ppk[2]!);
    const up = /^(\d+)\[IKE\] IKE_SA [^[\s]+\[(\d+)\] established/.exec(line);
    const id = up && pending.get(up[1]!);
    if (up && id) {
      sas.set(up[2]!, id);
      pending.delete(up[1]!);
    }
  }
  return sas;
}

/**
 * Whether a daemon's log holds any 8 bytes of `key`: as hex or base64 in a line, or in pluto's
 * debug hex dumps (bytes apart, over several lines).
 */
export function logHoldsKey(log: string, key: Buffer): boolean {
  const dumps = log
    .split('\n')
    .map((l) => /\|\s+((?:[0-9a-f]{2}\s+)+)/.exec(l)?.[1]?.replace(/\s+/g, '') ?? '')
    .join('');
  const flat = log.toLowerCase();
  for (let at = 0; at + 8 <= key.length; at++) {
    const hex = key.subarray(at, at + 8).toString('hex');
    if (flat.includes(hex) || dumps.includes(hex)) return true;
    // Base64 of the whole key, 6 bytes at a time where its 4-character groups begin.
    if (at % 3 === 0 && log.includes(key.subarray(at, at + 6).toString('base64'))) return true;
  }
  return false;
}
