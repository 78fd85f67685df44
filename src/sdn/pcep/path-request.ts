import { PCERR, type PcepErrorReply } from './errors.js';
import {
  encodeQkdParams,
  KEY_HANDLE_BYTES,
  QKD_PARAMS_BYTES,
  readQkdParams,
  UNSET_KEY_HANDLE,
  type QkdParams,
} from './ero.js';
import type { EndPointsObject, MetricObject, PcepObject, RpObject, VendorInfoObject } from './objects.js';
import { OBJECT_CLASS, RP_PRIORITY_MASK } from './objects.js';
import { ipv4Bytes, Reader } from './reader.js';

/**
 * The Private Enterprise Number in the VENDOR-INFORMATION object (RFC 7470) that carries the QKD
 * parameters. 32473 is IANA's "Example Enterprise Number for Documentation Use" (RFC 5612): QKS
 * has no registered number, and this one can never clash with a real vendor's.
 */
export const QKD_ENTERPRISE_NUMBER = 32473;

/** One request of a PCReq: `<RP> <END-POINTS> [<METRIC>...] [<VENDOR-INFORMATION>]`. */
export interface PathRequest {
  readonly rp: RpObject;
  readonly endPoints: EndPointsObject;
  readonly metrics: readonly MetricObject[];
  /** From the first VENDOR-INFORMATION object with QKD_ENTERPRISE_NUMBER, if any. */
  readonly qkd?: QkdParams;
}

/** A PCReq the PCE refuses: the PCErr to send (with the offending request's RP when there is one). */
export interface PathRequestError {
  readonly reply: PcepErrorReply;
  readonly rp?: RpObject;
}

/** The object classes RFC 5440 defines (1-15) plus VENDOR-INFORMATION: known, though maybe not supported. */
const isRfcClass = (cls: number) => (cls >= 1 && cls <= 15) || cls === OBJECT_CLASS.vendorInfo;

export function qkdVendorInfo(qkd: QkdParams, p = true): VendorInfoObject {
  return { kind: 'vendor-info', p, i: false, enterpriseNumber: QKD_ENTERPRISE_NUMBER, info: encodeQkdParams(qkd) };
}

const isQkdInfo = (o: VendorInfoObject) =>
  o.enterpriseNumber === QKD_ENTERPRISE_NUMBER && o.info.length === QKD_PARAMS_BYTES;

/**
 * Reads the requests of a PCReq. The first problem refuses the whole message: a request not
 * starting with RP → 6/1; RP without its P flag → 10/1; RP not directly followed by END-POINTS →
 * 6/3 (4/2 if they are END-POINTS of another type than IPv4). After END-POINTS, METRIC objects and the QKD VENDOR-INFORMATION object are taken; of any
 * other object, an unrecognized class → 3/1; with its P flag set → 4/1 (4/2 for an unknown type of
 * a class this codec decodes); without it, it is ignored, as RFC 5440 section 7.2 allows.
 */
export function readPathRequests(objects: readonly PcepObject[]): PathRequest[] | PathRequestError {
  const requests: PathRequest[] = [];
  let i = 0;
  while (i < objects.length) {
    const rp = objects[i]!;
    if (rp.kind !== 'rp') return { reply: PCERR.rpMissing };
    if (!rp.p) return { reply: PCERR.pFlagNotSet, rp };
    const endPoints = objects[i + 1];
    if (endPoints?.kind === 'raw' && endPoints.objectClass === OBJECT_CLASS.endPoints) {
      return { reply: PCERR.unsupportedObjectType, rp }; // END-POINTS of another type (IPv6, ...)
    }
    if (endPoints?.kind !== 'end-points') return { reply: PCERR.endPointsMissing, rp };
    const metrics: MetricObject[] = [];
    let qkd: QkdParams | undefined;
    for (i += 2; i < objects.length && objects[i]!.kind !== 'rp'; i++) {
      const o = objects[i]!;
      if (o.kind === 'metric') metrics.push(o);
      else if (o.kind === 'vendor-info' && isQkdInfo(o)) qkd ??= readQkdParams(new Reader(o.info));
      else {
        const refused = refusal(o, rp);
        if (refused) return refused;
      }
    }
    requests.push({ rp, endPoints, metrics, ...(qkd ? { qkd } : {}) });
  }
  return requests;
}

/** Whether an object a request cannot use is an error (see readPathRequests) or may be ignored. */
function refusal(o: PcepObject, rp: RpObject): PathRequestError | undefined {
  if (o.kind === 'raw' && !isRfcClass(o.objectClass)) return { reply: PCERR.unrecognizedObjectClass, rp };
  if (!o.p) return undefined;
  const decodedClass = Object.values(OBJECT_CLASS).some((c) => o.kind === 'raw' && c === o.objectClass);
  return { reply: decodedClass ? PCERR.unsupportedObjectType : PCERR.unsupportedObjectClass, rp };
}

/** What the path computation found: the hops (IPv4 node addresses) and the key handle, if set. */
export interface ComputedPath {
  readonly hops: readonly string[];
  readonly keyHandle?: Buffer;
}

/**
 * The objects answering one request: `<RP> <NO-PATH>` or `<RP> <ERO>`, the ERO holding one strict
 * IPv4 /32 subobject per hop, then (if the request carried QKD parameters) the QE subobject with
 * those parameters and the key handle (64 zero bytes when there is none).
 */
export function pathReplyObjects(request: PathRequest, path: ComputedPath | null): PcepObject[] {
  // Priority, R and B are echoed; O (bit 0x20) stays clear: the ERO is strict.
  const rp: RpObject = {
    ...request.rp,
    p: true,
    i: false,
    flags: request.rp.flags & (RP_PRIORITY_MASK | 0x18),
    tlvs: Buffer.alloc(0),
  };
  if (!path) return [rp, { kind: 'no-path', p: false, i: false, natureOfIssue: 0, flags: 0, tlvs: Buffer.alloc(0) }];
  const handle = path.keyHandle ?? UNSET_KEY_HANDLE;
  if (handle.length !== KEY_HANDLE_BYTES) throw new TypeError(`key handle must be ${KEY_HANDLE_BYTES} bytes`);
  path.hops.forEach(ipv4Bytes); // throws now, not when the reply is encoded
  const hops = path.hops.map((address) => ({ kind: 'ipv4' as const, loose: false, address, prefixLength: 32 }));
  const qe = request.qkd ? [{ kind: 'qe' as const, loose: false, keyHandle: handle, ...request.qkd }] : [];
  return [rp, { kind: 'ero', p: false, i: false, subobjects: [...hops, ...qe] }];
}
