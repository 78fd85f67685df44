// @peculiar/x509 needs the Reflect metadata polyfill loaded first, and Node's WebCrypto.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
