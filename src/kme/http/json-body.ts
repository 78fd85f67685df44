import type { FastifyInstance } from 'fastify';
import { badRequest } from '../../domain/errors.js';

/** JSON bodies: an empty body is no body (the standard allows an empty key request). */
export function acceptJsonBodies(app: FastifyInstance): void {
  // Only JSON is spoken here: a text/plain body is refused (415, sent as 400), not parsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(badRequest('request body is not valid JSON'), undefined);
    }
  });
}
