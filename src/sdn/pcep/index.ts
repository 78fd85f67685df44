export * from './errors.js';
export * from './ero.js';
export * from './objects.js';
export * from './messages.js';
export * from './path-request.js';
export { ipv4Bytes } from './reader.js';
export * from './pce-server.js';
