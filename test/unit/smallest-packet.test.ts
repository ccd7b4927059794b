import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { holdsSeveralPackets, packetShape, type ServerToClientAlgorithms } from '../../src/protocol/smallest-packet.js';

const smallestPacketBytes = (algorithms: ServerToClientAlgorithms): number | undefined => packetShape(algorithms)?.smallest;

describe('packetShape: the smallest packet', () => {
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

describe('holdsSeveralPackets', () => {
  const chacha = packetShape({ cipher: 'chacha20-poly1305@openssh.com', mac: undefined, compression: 'none' });
  const ctrHmac = packetShape({ cipher: 'aes128-ctr', mac: 'hmac-sha2-256', compression: 'none' });

  it('tells two packets read together from one (SUCCESS read with a 588-byte host-key announcement)', () => {
    assert.ok(chacha);
    assert.equal(holdsSeveralPackets(chacha, 28), false);
    assert.equal(holdsSeveralPackets(chacha, 28 + 588), true);
    // A USERAUTH_FAILURE naming publickey: one packet, whatever its size.
    assert.equal(holdsSeveralPackets(chacha, 44), false);
  });

  it('cannot tell where every packet is a whole number of blocks (aes-ctr with hmac-sha2-256)', () => {
    assert.ok(ctrHmac);
    assert.equal(ctrHmac.residue, 0);
    assert.equal(holdsSeveralPackets(ctrHmac, 48 + 96), false);
  });
});
