import { readdirSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { FastifyReply } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The page allows nothing from elsewhere: no inline script, no other origin. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** The front end's files (src/dashboard/public, plain JS and CSS, no build step), read once. */
export const PUBLIC_DIR = new URL('../../../src/dashboard/public/', import.meta.url);

export interface DashboardFiles {
  readonly names: readonly string[];
  has(name: string): boolean;
  send(reply: FastifyReply, name: string): FastifyReply;
}

let cached: Map<string, Buffer> | undefined;

export function dashboardFiles(): DashboardFiles {
  cached ??= new Map(
    readdirSync(PUBLIC_DIR)
      .filter((f) => TYPES[extname(f)])
      .map((f) => [f, readFileSync(new URL(f, PUBLIC_DIR))]),
  );
  const files = cached;
  return {
    names: [...files.keys()].sort(),
    has: (name) => files.has(name),
    send: (reply, name) =>
      reply.headers({ ...SECURITY_HEADERS, 'content-type': TYPES[extname(name)]! }).send(files.get(name)),
  };
}
