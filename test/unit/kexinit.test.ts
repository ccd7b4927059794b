import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reportAlgorithms } from '../../src/diagnose/algorithms.js';
import { encodeKexInit, parseKexInit, type KexInit } from '../../src/protocol/kexinit.js';
import { SshPacketReader } from '../../src/protocol/ssh-packets.js';
import { cleartextPacket } from '../fixtures/flights/ssh-packet.js';

const SAMPLE: Omit<KexInit, 'cookie'> = {
  kexAlgorithms: ['curve25519-sha256', 'diffie-hellman-group1-sha1', 'kex-strict-s-v00@openssh.com'],
  serverHostKeyAlgorithms: ['ssh-ed25519', 'ssh-rsa'],
  ciphersClientToServer: ['chacha20-poly1305@openssh.com', 'aes128-ctr'],
  ciphersServerToClient: ['chacha20-poly1305@openssh.com', '3des-cbc'],
  macsClientToServer: ['hmac-sha2-256-etm@openssh.com'],
  macsServerToClient: ['hmac-sha2-256-etm@openssh.com', 'hmac-md5'],
  compressionClientToServer: ['none'],
  compressionServerToClient: ['none', 'zlib@openssh.com'],
  languagesClientToServer: [],
  languagesServerToClient: [],
  firstKexPacketFollows: false,
};

test('a KEXINIT fed one byte at a time through the packet reader parses into its ten name-lists', () => {
  const cookie = Buffer.from('0123456789abcdef');
  const packet = cleartextPacket(encodeKexInit({ ...SAMPLE, cookie }), 0xaa);
  const reader = new SshPacketReader();
  const payloads: Buffer[] = [];
  for (const byte of packet) {
    const read = reader.push(Buffer.from([byte]));
    assert.equal(read.state, 'packets');
    if (read.state === 'packets') payloads.push(...read.payloads);
  }
  assert.equal(payloads.length, 1);
  const parsed = parseKexInit(payloads[0] as Buffer);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
  assert.deepEqual(parsed.kexinit.cookie, cookie);
  assert.deepEqual(parsed.kexinit.kexAlgorithms, SAMPLE.kexAlgorithms);
  assert.deepEqual(parsed.kexinit.serverHostKeyAlgorithms, ['ssh-ed25519', 'ssh-rsa']);
  assert.deepEqual(parsed.kexinit.ciphersServerToClient, ['chacha20-poly1305@openssh.com', '3des-cbc']);
  assert.deepEqual(parsed.kexinit.macsServerToClient, ['hmac-sha2-256-etm@openssh.com', 'hmac-md5']);
  assert.deepEqual(parsed.kexinit.compressionServerToClient, ['none', 'zlib@openssh.com']);
  assert.deepEqual(parsed.kexinit.languagesClientToServer, []);
  assert.equal(parsed.kexinit.firstKexPacketFollows, false);
});

test('first_kex_packet_follows is read', () => {
  const parsed = parseKexInit(encodeKexInit({ ...SAMPLE, firstKexPacketFollows: true }));
  assert.ok(parsed.ok);
  assert.equal(parsed.kexinit.firstKexPacketFollows, true);
});

test('every truncation of a KEXINIT payload is rejected with a message, never thrown', () => {
  const payload = encodeKexInit(SAMPLE);
  for (let length = 0; length < payload.length; length += 1) {
    const parsed = parseKexInit(payload.subarray(0, length));
    assert.equal(parsed.ok, false, `length ${length} accepted`);
    if (!parsed.ok) assert.match(parsed.message, /^malformed KEXINIT: /);
  }
  assert.equal(parseKexInit(payload).ok, true);
});

test('a payload of another message type, an absurd name-list length, or binary names is rejected', () => {
  const newkeys = parseKexInit(Buffer.from([21]));
  assert.equal(newkeys.ok, false);
  if (!newkeys.ok) assert.match(newkeys.message, /message type 21 is not KEXINIT/);

  const huge = Buffer.concat([Buffer.from([20]), Buffer.alloc(16), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
  const hugeParsed = parseKexInit(huge);
  assert.equal(hugeParsed.ok, false);
  if (!hugeParsed.ok) assert.match(hugeParsed.message, /claims 4294967295 bytes/);

  const binary = encodeKexInit({ ...SAMPLE, kexAlgorithms: ['curve25519\u0001sha256'] });
  assert.equal(parseKexInit(binary).ok, false);
});

test('the algorithm report flags SHA-1/1024-bit kex, ssh-rsa, CBC/3DES and MD5, and nothing modern', () => {
  const parsed = parseKexInit(encodeKexInit(SAMPLE));
  assert.ok(parsed.ok);
  const report = reportAlgorithms(parsed.kexinit);
  const weak = report.weak.map((entry) => `${entry.category}:${entry.name}`).sort();
  assert.deepEqual(weak, ['ciphers:3des-cbc', 'hostKey:ssh-rsa', 'kex:diffie-hellman-group1-sha1', 'macs:hmac-md5']);
  // Both directions are merged without duplicates.
  assert.deepEqual(report.offered.ciphers, ['chacha20-poly1305@openssh.com', '3des-cbc', 'aes128-ctr']);
  assert.match(report.weak.find((entry) => entry.name === 'ssh-rsa')?.why ?? '', /SHA-1/);
});
