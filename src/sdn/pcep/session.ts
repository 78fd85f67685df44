import type { Socket } from 'node:net';
import { CLOSE_REASON, PCERR, PcepDecodeError, type PcepErrorReply } from './errors.js';
import { decodeMessage, encodeMessage, PcepFramer, type PcepMessage } from './messages.js';
import { RP_PRIORITY_MASK, type OpenObject, type PcepObject, type RpObject } from './objects.js';
import { pathReplyObjects, readPathRequests, type PathRequest } from './path-request.js';
import type { PceServerOptions, PcepLogger } from './pce-server.js';

/** Timers of one session, in milliseconds (the Open carries seconds; tests shorten the waits). */
export interface SessionTimers {
  readonly keepaliveSeconds: number;
  readonly deadTimerSeconds: number;
  readonly openWaitMs: number;
  readonly keepWaitMs: number;
}

const noTlvs = Buffer.alloc(0);
const errorObject = (e: PcepErrorReply): PcepObject => ({
  kind: 'error',
  p: false,
  i: false,
  flags: 0,
  ...e,
  tlvs: noTlvs,
});

/**
 * One PCC's session (RFC 5440 section 6 and appendix A, PCE side): Open exchange, then Keepalives
 * both ways, PCReq answered by PCRep, Close. State: 'open-wait' until the peer's Open,
 * 'keep-wait' until its Keepalive acknowledges ours, then 'up'.
 */
export class PcepSession {
  #state: 'open-wait' | 'keep-wait' | 'up' | 'closed' = 'open-wait';
  #peerOpen: OpenObject | undefined;
  #waitTimer: NodeJS.Timeout | undefined;
  #deadTimer: NodeJS.Timeout | undefined;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  readonly #framer: PcepFramer;
  readonly #log: PcepLogger;

  constructor(
    private readonly socket: Socket,
    readonly sessionId: number,
    private readonly opts: Pick<PceServerOptions, 'computePath' | 'maxMessageBytes'>,
    private readonly timers: SessionTimers,
    log: PcepLogger,
    private readonly onEnd: (s: PcepSession) => void,
  ) {
    this.#log = log;
    this.#framer = new PcepFramer(opts.maxMessageBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (err) => this.#log.warn({ err: err.message }, 'PCEP socket error'));
    socket.on('close', () => this.#stop());
    const { keepaliveSeconds: keepalive, deadTimerSeconds: deadTimer } = timers;
    this.#send({
      type: 'open',
      open: { kind: 'open', p: false, i: false, flags: 0, keepalive, deadTimer, sessionId, tlvs: noTlvs },
    });
    this.#waitTimer = setTimeout(
      () => this.#refuse(PCERR.openWaitExpired, 'no Open before OpenWait expired'),
      timers.openWaitMs,
    );
  }

  get state(): string {
    return this.#state;
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  /** Ends the session with a Close message (reason 1 unless given). */
  close(reason: number = CLOSE_REASON.noExplanation): void {
    if (this.#state === 'closed') return;
    this.#send({ type: 'close', close: { kind: 'close', p: false, i: false, flags: 0, reason, tlvs: noTlvs } });
    this.#end();
  }

  #send(m: PcepMessage): void {
    if (this.#state === 'closed' || this.socket.destroyed) return;
    this.socket.write(encodeMessage(m));
    this.#armKeepalive();
  }

  #sendError(reply: PcepErrorReply, rp?: RpObject): void {
    // RFC 5440 section 7.4.1: an RP in a PCErr has its P flag cleared.
    const rps: PcepObject[] = rp ? [{ ...rp, p: false }] : [];
    this.#send({ type: 'pcerr', objects: [...rps, errorObject(reply)] });
  }

  /** Session set-up failed: PCErr, then the TCP connection is released (RFC 5440 section 6.2). */
  #refuse(reply: PcepErrorReply, why: string): void {
    this.#log.warn({ errorType: reply.errorType, errorValue: reply.errorValue }, `PCEP session refused: ${why}`);
    this.#sendError(reply);
    this.#end();
  }

  #end(): void {
    if (this.#state === 'closed') return;
    this.#stop();
    this.socket.end();
    // A peer that never reads must not keep the socket (and close()) waiting.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  #stop(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const t of [this.#waitTimer, this.#deadTimer, this.#keepaliveTimer]) clearTimeout(t);
    this.onEnd(this);
  }

  #armKeepalive(): void {
    clearTimeout(this.#keepaliveTimer);
    if (this.#state !== 'up' || this.timers.keepaliveSeconds === 0) return;
    this.#keepaliveTimer = setTimeout(() => this.#send({ type: 'keepalive' }), this.timers.keepaliveSeconds * 1000);
  }

  /** The peer's DeadTimer (from its Open): silence that long ends the session. 0 disables it. */
  #armDeadTimer(): void {
    clearTimeout(this.#deadTimer);
    const seconds = this.#peerOpen?.deadTimer ?? 0;
    if (seconds === 0) return;
    this.#deadTimer = setTimeout(() => {
      this.#log.warn({ deadTimer: seconds }, 'PCEP peer silent for its DeadTimer: closing');
      this.close(CLOSE_REASON.deadTimerExpired);
    }, seconds * 1000);
  }

  #receive(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    try {
      for (const frame of this.#framer.push(chunk)) {
        this.#armDeadTimer();
        this.#handle(decodeMessage(frame, this.opts.maxMessageBytes));
        if (this.closed) return;
      }
    } catch (err) {
      if (err instanceof PcepDecodeError) return this.#malformed(err);
      this.#log.error({ err: (err as Error).message }, 'PCEP session failed');
      this.close(CLOSE_REASON.noExplanation);
    }
  }

  /** Before the session is up: PCErr 1/1 (1/8 for a version) and release; after: PCErr if RFC 5440 has one, then Close 3. */
  #malformed(err: PcepDecodeError): void {
    this.#log.warn({ code: err.code, offset: err.offset }, `malformed PCEP message: ${err.message}`);
    if (this.#state !== 'up') return this.#refuse(err.reply ?? PCERR.invalidOpen, err.code);
    if (err.reply) this.#sendError(err.reply);
    this.close(CLOSE_REASON.malformedMessage);
  }

  #handle(m: PcepMessage): void {
    if (this.#state === 'open-wait') {
      if (m.type !== 'open') return this.#refuse(PCERR.invalidOpen, `${m.type} before Open`);
      this.#peerOpen = m.open;
      this.#state = 'keep-wait';
      this.#send({ type: 'keepalive' });
      clearTimeout(this.#waitTimer);
      this.#waitTimer = setTimeout(
        () => this.#refuse(PCERR.keepWaitExpired, 'no Keepalive before KeepWait expired'),
        this.timers.keepWaitMs,
      );
      this.#armDeadTimer();
      return;
    }
    switch (m.type) {
      case 'open':
        // RFC 5440 defines no second Open on a session: refused as an invalid Open, and closed.
        this.#log.warn({}, 'second Open on a PCEP session');
        this.#sendError(PCERR.invalidOpen);
        return this.close(CLOSE_REASON.noExplanation);
      case 'keepalive':
        if (this.#state === 'keep-wait') this.#up();
        return;
      case 'close':
        this.#log.info({ reason: m.close.reason }, 'PCEP peer closed the session');
        return this.#end();
      case 'pcerr': {
        const errors = m.objects.flatMap((o) => (o.kind === 'error' ? [`${o.errorType}/${o.errorValue}`] : []));
        this.#log.warn({ errors }, 'PCErr from the PCEP peer');
        if (this.#state === 'keep-wait') this.#end(); // it refuses our Open; there is nothing to negotiate
        return;
      }
    }
    if (this.#state === 'keep-wait') return this.#refuse(PCERR.invalidOpen, `${m.type} before Keepalive`);
    if (m.type === 'pcreq') {
      return void this.#pathRequests(m.objects).catch((err: Error) => {
        this.#log.error({ err: err.message }, 'PCReq failed');
        this.close(CLOSE_REASON.noExplanation);
      });
    }
    this.#log.warn({ type: m.type === 'unknown' ? m.messageType : m.type }, 'unexpected PCEP message ignored');
  }

  #up(): void {
    clearTimeout(this.#waitTimer);
    this.#state = 'up';
    const peer = this.#peerOpen!;
    this.#log.info({ sid: this.sessionId, keepalive: peer.keepalive, deadTimer: peer.deadTimer }, 'PCEP session up');
    this.#armKeepalive();
  }

  async #pathRequests(objects: readonly PcepObject[]): Promise<void> {
    const requests = readPathRequests(objects);
    if (!Array.isArray(requests)) {
      const { reply, rp } = requests;
      this.#log.warn(
        { errorType: reply.errorType, errorValue: reply.errorValue, requestId: rp?.requestId },
        'PCReq refused',
      );
      return this.#sendError(reply, rp);
    }
    const answers = await Promise.all(requests.map((r) => this.#answer(r)));
    this.#send({ type: 'pcrep', objects: answers.flat() });
  }

  async #answer(request: PathRequest): Promise<PcepObject[]> {
    const { rp, endPoints, qkd, metrics } = request;
    const asked = { requestId: rp.requestId, source: endPoints.source, destination: endPoints.destination, qkd };
    try {
      const path = await this.opts.computePath({ ...asked, metrics, priority: rp.flags & RP_PRIORITY_MASK });
      const objects = pathReplyObjects(request, path);
      this.#log.info({ ...asked, hops: path?.hops, keyHandle: path?.keyHandle?.toString('hex') }, 'PCReq answered');
      return objects;
    } catch (err) {
      this.#log.error({ ...asked, err: (err as Error).message }, 'path computation failed: NO-PATH');
      return pathReplyObjects(request, null);
    }
  }
}
