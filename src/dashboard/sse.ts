import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Server-sent event streams: each subscriber gets a fresh view at once, then every interval. A
 * view that fails to build is skipped, not fatal; `closeAll` ends every stream so a server can stop.
 */
export class EventStreams {
  readonly #open = new Set<() => void>();

  serve(req: FastifyRequest, reply: FastifyReply, view: () => Promise<unknown>, intervalMs: number): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
    });
    let sending = false;
    const send = async () => {
      if (sending) return;
      sending = true;
      try {
        res.write(`data: ${JSON.stringify(await view())}\n\n`);
      } catch (err) {
        req.log.warn({ err: (err as Error).message }, 'dashboard view failed');
      } finally {
        sending = false;
      }
    };
    void send();
    const timer = setInterval(() => void send(), intervalMs);
    const close = () => {
      clearInterval(timer);
      this.#open.delete(close);
      res.end();
    };
    this.#open.add(close);
    req.raw.on('close', close);
  }

  closeAll(): void {
    for (const close of [...this.#open]) close();
  }
}
