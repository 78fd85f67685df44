import pkcs11js from 'pkcs11js';
import { CustodyError, type KeyCustody } from './key-custody.js';

export interface Pkcs11Options {
  /** The PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly module: string;
  /** The token, found by its label (slot numbers change, e.g. after softhsm2-util --init-token). */
  readonly tokenLabel: string;
  /** The user PIN; the caller reads it from a file or the environment (hsm-pin.ts). */
  readonly pin: string;
}

const WRAP = { mechanism: pkcs11js.CKM_AES_KEY_WRAP, parameter: null as unknown as Buffer };
type Template = pkcs11js.Template;

/** A PKCS#11 failure in words an operator can act on; never any key bytes (there are none to show). */
function tokenError(what: string, err: unknown): CustodyError {
  const code = (err as Error).message?.match(/CKR_\w+/)?.[0] ?? (err as Error).message;
  return new CustodyError(`${what}: ${code}`);
}

/**
 * KEKs in a PKCS#11 token: AES-256 keys generated in the token, kept there (CKA_TOKEN), sensitive
 * and not extractable, allowed to wrap and unwrap and nothing else. Data keys pass through the
 * token only as session objects, destroyed at once.
 */
export class Pkcs11Custody implements KeyCustody {
  readonly #p11 = new pkcs11js.PKCS11();
  readonly #session: Buffer;
  #initialized = false;

  constructor(opts: Pkcs11Options) {
    try {
      this.#p11.load(opts.module);
    } catch (err) {
      throw new CustodyError(`cannot load the PKCS#11 module ${opts.module}: ${(err as Error).message}`);
    }
    try {
      this.#p11.C_Initialize();
      this.#initialized = true;
    } catch (err) {
      // Another custody in this process initialized the library already: share it.
      if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test((err as Error).message)) throw tokenError('C_Initialize', err);
    }
    try {
      const slot = this.#p11
        .C_GetSlotList(true)
        .find((s) => this.#p11.C_GetTokenInfo(s).label.trim() === opts.tokenLabel);
      if (!slot) throw new CustodyError(`no token labelled "${opts.tokenLabel}" in ${opts.module}`);
      this.#session = this.#p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        this.#p11.C_Login(this.#session, pkcs11js.CKU_USER, opts.pin);
      } catch (err) {
        if (/CKR_USER_ALREADY_LOGGED_IN/.test((err as Error).message)) return;
        this.#p11.C_CloseSession(this.#session);
        if (/CKR_PIN_INCORRECT|CKR_PIN_INVALID|CKR_PIN_LEN_RANGE/.test((err as Error).message))
          throw new CustodyError(
            `token "${opts.tokenLabel}" refused the PIN (${tokenError('', err).message.slice(2)})`,
          );
        throw tokenError(`cannot log in to token "${opts.tokenLabel}"`, err);
      }
    } catch (err) {
      this.#finalize();
      throw err instanceof CustodyError ? err : tokenError(`token "${opts.tokenLabel}"`, err);
    }
  }

  listKeks(): string[] {
    return this.#find([
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
    ]).flatMap((h) => {
      try {
        const [label] = this.#p11.C_GetAttributeValue(this.#session, h, [{ type: pkcs11js.CKA_LABEL }]);
        return label?.value ? [label.value.toString('utf8')] : [];
      } catch (err) {
        // Destroyed by another process (a KME finishing a rotation) since it was found: gone.
        if (/CKR_OBJECT_HANDLE_INVALID/.test((err as Error).message)) return [];
        throw err;
      }
    });
  }

  createKek(name: string): void {
    if (this.#handles(name).length > 0) throw new CustodyError(`a KEK labelled ${name} already exists`);
    try {
      this.#p11.C_GenerateKey(this.#session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_LABEL, value: name },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_WRAP, value: true },
        { type: pkcs11js.CKA_UNWRAP, value: true },
        { type: pkcs11js.CKA_ENCRYPT, value: false },
        { type: pkcs11js.CKA_DECRYPT, value: false },
        { type: pkcs11js.CKA_SIGN, value: false },
        { type: pkcs11js.CKA_VERIFY, value: false },
      ]);
    } catch (err) {
      throw tokenError(`cannot generate KEK ${name}`, err);
    }
  }

  destroyKek(name: string): void {
    const handles = this.#handles(name);
    if (handles.length === 0) throw new CustodyError(`no KEK labelled ${name} in the token`);
    for (const h of handles) this.#p11.C_DestroyObject(this.#session, h);
  }

  wrap(kek: string, dataKey: Buffer): Buffer {
    if (dataKey.length !== 32) throw new TypeError('a data key is 32 bytes');
    const wrapping = this.#kek(kek);
    const key = this.#p11.C_CreateObject(this.#session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_EXTRACTABLE, value: true },
      { type: pkcs11js.CKA_VALUE, value: dataKey },
    ]);
    try {
      return Buffer.from(this.#p11.C_WrapKey(this.#session, WRAP, wrapping, key, Buffer.alloc(dataKey.length + 8)));
    } catch (err) {
      throw tokenError(`cannot wrap a data key under KEK ${kek}`, err);
    } finally {
      this.#p11.C_DestroyObject(this.#session, key);
    }
  }

  unwrap(kek: string, wrapped: Buffer): Buffer {
    const unwrapping = this.#kek(kek);
    let key: Buffer;
    try {
      key = this.#p11.C_UnwrapKey(this.#session, WRAP, unwrapping, wrapped, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_SENSITIVE, value: false },
        { type: pkcs11js.CKA_EXTRACTABLE, value: true },
      ]);
    } catch (err) {
      throw tokenError(`a data key does not open under KEK ${kek}`, err);
    }
    try {
      const [value] = this.#p11.C_GetAttributeValue(this.#session, key, [{ type: pkcs11js.CKA_VALUE }]);
      const out = Buffer.alloc(value!.value!.length);
      value!.value!.copy(out);
      value!.value!.fill(0);
      return out;
    } finally {
      this.#p11.C_DestroyObject(this.#session, key);
    }
  }

  close(): void {
    try {
      this.#p11.C_CloseSession(this.#session);
    } finally {
      this.#finalize();
    }
  }

  #finalize(): void {
    if (this.#initialized) this.#p11.C_Finalize();
    this.#initialized = false;
  }

  #kek(name: string): Buffer {
    const [handle, ...more] = this.#handles(name);
    if (!handle) throw new CustodyError(`no KEK labelled ${name} in the token`);
    if (more.length > 0) throw new CustodyError(`more than one KEK labelled ${name} in the token`);
    return handle;
  }

  #handles(name: string): Buffer[] {
    return this.#find([
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: name },
    ]);
  }

  #find(template: Template): Buffer[] {
    this.#p11.C_FindObjectsInit(this.#session, template);
    try {
      return this.#p11.C_FindObjects(this.#session, 1000);
    } finally {
      this.#p11.C_FindObjectsFinal(this.#session);
    }
  }
}
