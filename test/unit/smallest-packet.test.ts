import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { smallestPacketBytes } from '../../src/protocol/smallest-packet.js';

describe('smallestPacketBytes', () => {
  // Each figure is the USERAUTH_SUCCESS flight measured from OpenSSH 9.2 and 10.0 (docs/penalties.md).
  const measured: [string, string, number][] = [
    ['chacha20-poly1305@openssh.com', 'hmac-sha2-256', 28],
    ['aes128-gcm@openssh.com', 'hmac-sha2-256', 36],
    ['aes128-ctr', 'hmac-sha2-256', 48],
    ['aes128-ctr', 'hmac-sha2-256-etm@openssh.com', 52],
    ['aes128-ctr', 'umac-64@openssh.com', 24],
    ['aes256-ctr', 'hmac-sha1', 36],
    ['aes256-ctr', 'hmac-sha2-512-etm@openssh.com', 84],
  ];
  for (const [cipher, mac, bytes] of measured) {
    it(`${cipher} + ${mac}: ${bytes} bytes`, () => {
      assert.equal(smallestPacketBytes({ cipher, mac, compression: 'none' }), bytes);
    });
  }

  it('delayed compression (zlib@openssh.com) starts after authentication: same size', () => {
    assert.equal(smallestPacketBytes({ cipher: 'aes128-ctr', mac: 'hmac-sha2-256', compression: 'zlib@openssh.com' }), 48);
  });

  it('unknown: compression from the start, an unknown cipher or MAC, nothing negotiated', () => {
    assert.equal(smallestPacketBytes({ cipher: 'aes128-ctr', mac: 'hmac-sha2-256', compression: 'zlib' }), undefined);
    assert.equal(smallestPacketBytes({ cipher: 'twofish-ctr', mac: 'hmac-sha2-256', compression: 'none' }), undefined);
    assert.equal(smallestPacketBytes({ cipher: 'aes128-ctr', mac: 'hmac-ripemd160', compression: 'none' }), undefined);
    assert.equal(smallestPacketBytes({ cipher: undefined, mac: undefined, compression: undefined }), undefined);
  });
});
