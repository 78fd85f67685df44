import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { readHsmPin } from '../../src/stores/custody/hsm-pin.js';
import { CustodyError, type KeyCustody } from '../../src/stores/custody/key-custody.js';
import { MemoryCustody } from '../../src/stores/custody/memory-custody.js';
import { Pkcs11Custody } from '../../src/stores/custody/pkcs11-custody.js';
import { createTestToken, softHsmSkip, type TestToken } from '../helpers/softhsm.js';

/** What every key custody must do, run on each backend. */
function conformance(name: string, open: () => KeyCustody, close?: () => void) {
  describe(`key custody conformance: ${name}`, () => {
    let custody: KeyCustody;
    before(() => (custody = open()));
    after(() => {
      custody.close();
      close?.();
    });

    it('creates KEKs by name and lists them; a name is taken once', () => {
      custody.createKek('kek.1');
      custody.createKek('kek.2');
      assert.deepEqual(custody.listKeks().sort(), ['kek.1', 'kek.2']);
      assert.throws(() => custody.createKek('kek.1'), CustodyError);
    });

    it('wraps a data key so that only its KEK unwraps it, and never shows it in clear', () => {
      const dek = randomBytes(32);
      const wrapped = custody.wrap('kek.1', dek);
      assert.equal(wrapped.length, 40, 'RFC 3394: 8 bytes more than the key');
      assert.equal(wrapped.indexOf(dek.subarray(0, 8)), -1);
      assert.deepEqual(custody.unwrap('kek.1', wrapped), dek);
      assert.throws(() => custody.unwrap('kek.2', wrapped), CustodyError, 'another KEK does not open it');
      const tampered = Buffer.from(wrapped);
      tampered[5]! ^= 1;
      assert.throws(() => custody.unwrap('kek.1', tampered), CustodyError, 'a changed bit is noticed');
    });

    it('two wraps of one key under different KEKs differ; each opens under its own', () => {
      const dek = randomBytes(32);
      const [a, b] = [custody.wrap('kek.1', dek), custody.wrap('kek.2', dek)];
      assert.notDeepEqual(a, b);
      assert.deepEqual(custody.unwrap('kek.2', b), dek);
    });

    it('a destroyed KEK is gone: nothing wrapped under it opens', () => {
      custody.createKek('kek.3');
      const wrapped = custody.wrap('kek.3', randomBytes(32));
      custody.destroyKek('kek.3');
      assert.ok(!custody.listKeks().includes('kek.3'));
      assert.throws(() => custody.unwrap('kek.3', wrapped), /no KEK/);
      assert.throws(() => custody.destroyKek('kek.3'), /no KEK/);
    });
  });
}

conformance('in-process', () => new MemoryCustody());

describe('PKCS#11 custody on a SoftHSM2 token', { skip: softHsmSkip() }, () => {
  let token: TestToken;
  before(() => (token = createTestToken()));
  after(() => token.remove());

  conformance(
    'PKCS#11 (SoftHSM2)',
    () => new Pkcs11Custody({ module: token.module, tokenLabel: token.label, pin: token.pin }),
  );

  it('the KEK is sensitive and not extractable: its value cannot be read, nor wrapped out of the token', () => {
    const custody = new Pkcs11Custody({ module: token.module, tokenLabel: token.label, pin: token.pin });
    custody.createKek('guarded.1');
    custody.close();
    // The token as an attacker with the PIN would use it, without QKS's code in the way.
    const p11 = new pkcs11js.PKCS11();
    p11.load(token.module);
    p11.C_Initialize();
    try {
      const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === token.label)!;
      const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      p11.C_Login(session, pkcs11js.CKU_USER, token.pin);
      p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: 'guarded.1' }]);
      const [kek] = p11.C_FindObjects(session, 10);
      p11.C_FindObjectsFinal(session);
      assert.ok(kek);
      const attrs = p11.C_GetAttributeValue(session, kek, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_ENCRYPT },
        { type: pkcs11js.CKA_WRAP },
      ]);
      assert.deepEqual(
        attrs.map((a) => a.value![0]),
        [1, 0, 0, 1],
        'sensitive, not extractable, no encryption, wraps',
      );
      assert.throws(
        () => p11.C_GetAttributeValue(session, kek, [{ type: pkcs11js.CKA_VALUE }]),
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
      const other = p11.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_WRAP, value: true },
      ]);
      assert.throws(
        () => p11.C_WrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP }, other, kek, Buffer.alloc(64)),
        /CKR_KEY_UNEXTRACTABLE/,
      );
      p11.C_CloseSession(session);
    } finally {
      p11.C_Finalize();
    }
  });

  it('a wrong PIN and an unknown token are refused with errors that say so', () => {
    assert.throws(
      () => new Pkcs11Custody({ module: token.module, tokenLabel: token.label, pin: 'not-the-pin' }),
      /token "qks-test" refused the PIN \(CKR_PIN_INCORRECT\)/,
    );
    assert.throws(
      () => new Pkcs11Custody({ module: token.module, tokenLabel: 'no-such-token', pin: token.pin }),
      /no token labelled "no-such-token"/,
    );
    assert.throws(
      () => new Pkcs11Custody({ module: '/nonexistent/lib.so', tokenLabel: token.label, pin: token.pin }),
      /cannot load the PKCS#11 module \/nonexistent\/lib.so/,
    );
  });
});

describe('the HSM PIN', () => {
  it('comes from a file only its owner may read, else from QKS_HSM_PIN; never guessed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qks-pin-'));
    try {
      const file = join(dir, 'pin');
      writeFileSync(file, '1234\n', { mode: 0o600 });
      assert.equal(readHsmPin(file, {}), '1234', 'one line, its newline dropped');
      writeFileSync(join(dir, 'open'), '1234\n', { mode: 0o640 });
      assert.throws(() => readHsmPin(join(dir, 'open'), {}), /open to group or others \(mode 0640\); run `chmod 600/);
      assert.throws(() => readHsmPin(join(dir, 'none'), {}), /master_key.pin_file .*none: no such file/);
      assert.equal(readHsmPin(undefined, { QKS_HSM_PIN: '5678' }), '5678');
      assert.throws(() => readHsmPin(undefined, {}), /no PIN; set master_key.pin_file or the QKS_HSM_PIN/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
