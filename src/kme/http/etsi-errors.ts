import type { FastifyError, FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import { ERROR_TABLE, QksError } from '../../domain/errors.js';

/** Fastify's own request errors, said in words an SAE can act on. */
const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'request body is too large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Content-Type must be application/json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'request body is empty',
  FST_ERR_BAD_URL: 'malformed URL',
  FST_ERR_MAX_PARAM_LENGTH: 'an ID in the path is too long',
};

/**
 * The one place where errors become ETSI GS QKD 014 responses: 400 and 503 carry the Error body
 * `{message, details?}`, 401 the short `{"message": "unauthorized"}` (clients in the field parse
 * JSON on every non-200; the reason stays in the log), and nothing else is ever sent. Internal
 * failures are 503 with a generic text; their cause goes to the log only.
 */
export function toEtsiError(err: unknown): {
  status: 400 | 401 | 503;
  body: { message: string; details?: unknown[] };
} {
  if (err instanceof QksError) {
    if (err.status === 401) return { status: 401, body: { message: ERROR_TABLE.UNAUTHORIZED.message } };
    return { status: err.status, body: { message: err.message, ...(err.details ? { details: err.details } : {}) } };
  }
  const fe = err as Partial<FastifyError>;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: 400, body: { message: (fe.code && FASTIFY_MESSAGES[fe.code]) ?? 'bad request' } };
  }
  return { status: 503, body: { message: 'internal error' } };
}

export function sendEtsiError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body } = toEtsiError(err);
  return reply.code(status).send(body);
}

/** Node's HTTP parser refuses these before any route runs; said as the ETSI 400 an SAE can act on. */
const CLIENT_ERROR_MESSAGES: Record<string, string> = {
  HPE_HEADER_OVERFLOW: 'request headers or path are too large',
  ERR_HTTP_REQUEST_TIMEOUT: 'request not received in time',
};

/** The raw HTTP answer to a request Node's parser refused (the connection closes after it). */
export function clientErrorResponse(err: { code?: string | undefined }): string {
  const body = JSON.stringify({ message: (err.code && CLIENT_ERROR_MESSAGES[err.code]) ?? 'malformed HTTP request' });
  return (
    'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** An `Expect` other than 100-continue: 400 instead of Node's 417. */
export function unsupportedExpectation(res: ServerResponse): void {
  const body = JSON.stringify({ message: 'the Expect header is not supported (only 100-continue)' });
  res
    .writeHead(400, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    })
    .end(body);
}
