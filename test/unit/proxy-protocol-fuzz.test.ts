import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  ProxyHeaderParser,
  V1_MAX_HEADER_BYTES,
  V2_DEFAULT_MAX_LENGTH,
  V2_FIXED_HEADER_BYTES,
  type ProxyHeader,
  type ProxyParseResult,
  type ProxyProtocolMode,
} from '../../src/protocol/proxy-protocol.js';
import { V2_SIG, goodProxyCases, ipv4Bytes, ipv6Bytes, tlv, v2Header } from '../fixtures/proxy/proxy-protocol-corpus.js';

const NUM_RUNS = 2000;
/** No input this long may leave the parser waiting (default v2 cap). */
const MAX_HEADER_BYTES = V2_FIXED_HEADER_BYTES + V2_DEFAULT_MAX_LENGTH;

const modeArb = fc.constantFrom<ProxyProtocolMode>('v1', 'v2', 'any');

/** Feeds `input` cut at `cuts`; stops at the first final result, as a session would. */
function feed(mode: ProxyProtocolMode, input: Buffer, cuts: readonly number[] = []): { result: ProxyParseResult; forwarded: Buffer } {
  const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
  const parser = new ProxyHeaderParser(mode);
  let start = 0;
  for (const end of [...points, input.length]) {
    const result = parser.push(input.subarray(start, end));
    if (result.state === 'done') return { result, forwarded: Buffer.concat([result.rest, input.subarray(end)]) };
    if (result.state === 'error') return { result, forwarded: Buffer.alloc(0) };
    start = end;
  }
  return { result: { state: 'incomplete' }, forwarded: Buffer.alloc(0) };
}

function normalize(outcome: { result: ProxyParseResult; forwarded: Buffer }): unknown {
  const { result } = outcome;
  if (result.state === 'done') return { header: result.header, forwarded: outcome.forwarded.toString('hex') };
  return result;
}

/** A done result must describe a header the rest of the proxy can trust. */
/** `forwarded`: rest plus the bytes not yet pushed. */
function assertValidHeader(header: ProxyHeader, input: Buffer, forwarded: Buffer): void {
  assert.ok(header.version === 1 || header.version === 2);
  assert.ok(header.headerBytes <= (header.version === 1 ? V1_MAX_HEADER_BYTES : MAX_HEADER_BYTES));
  assert.deepEqual(forwarded, input.subarray(header.headerBytes));
  const line = input.subarray(0, header.headerBytes).toString('latin1');
  if (header.version === 1) {
    // The header must be the canonical line for what was parsed: no leading
    // zeros, extra spaces or stray CR/LF slip through.
    const canonical = header.command === 'LOCAL'
      ? /^PROXY UNKNOWN(?: [^\r\n]*)?\r\n$/.test(line)
      : line === `PROXY ${header.family} ${header.sourceAddress} ${header.destinationAddress} ${header.sourcePort} ${header.destinationPort}\r\n`;
    assert.ok(canonical, `non-canonical v1 line accepted: ${JSON.stringify(line)}`);
  }
  if (header.command === 'LOCAL') {
    assert.equal(header.family, 'UNSPEC');
    assert.equal(header.sourceAddress, undefined);
    assert.equal(header.destinationAddress, undefined);
    assert.deepEqual(header.tlvs, []);
    return;
  }
  assert.equal(header.command, 'PROXY');
  const isAddress = header.family === 'TCP4' ? isIPv4 : header.family === 'TCP6' ? isIPv6 : undefined;
  assert.ok(isAddress, `family ${header.family}`);
  assert.ok(isAddress(header.sourceAddress ?? ''), `source ${header.sourceAddress}`);
  assert.ok(isAddress(header.destinationAddress ?? ''), `destination ${header.destinationAddress}`);
  for (const port of [header.sourcePort, header.destinationPort]) {
    assert.ok(Number.isInteger(port) && port !== undefined && port >= 0 && port <= 65535, `port ${port}`);
  }
  if (header.version === 2) {
    const addressBytes = header.family === 'TCP4' ? 12 : 36;
    const tlvBytes = header.tlvs.reduce((sum, t) => sum + 3 + t.length, 0);
    assert.equal(V2_FIXED_HEADER_BYTES + addressBytes + tlvBytes, header.headerBytes);
  }
}

type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; value: number }
  | { kind: 'delete'; at: number }
  | { kind: 'truncate'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let bytes = Array.from(input);
  for (const m of mutations) {
    const at = m.at % (bytes.length + 1);
    if (m.kind === 'set' && at < bytes.length) bytes[at] = m.value;
    if (m.kind === 'insert') bytes.splice(at, 0, m.value);
    if (m.kind === 'delete') bytes.splice(at, 1);
    if (m.kind === 'truncate') bytes = bytes.slice(0, at);
  }
  return Buffer.from(bytes);
}

const goodCaseArb = fc.constantFrom(...goodProxyCases);
const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

describe('PROXY header parser fuzz', () => {
  it('random bytes never throw and give the same result however they are split', () => {
    fc.assert(
      fc.property(modeArb, fc.uint8Array({ maxLength: 200 }), cutsArb, (mode, raw, cuts) => {
        const input = Buffer.from(raw);
        const whole = feed(mode, input);
        assert.ok(['incomplete', 'done', 'error'].includes(whole.result.state));
        assert.deepEqual(normalize(feed(mode, input, cuts)), normalize(whole));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('random bytes after a valid start never throw and end within the cap', () => {
    const prefixArb = fc.constantFrom(
      Buffer.from('PROXY '),
      Buffer.from('PROXY TCP4 '),
      Buffer.from('PROXY TCP6 '),
      Buffer.from('PROXY UNKNOWN '),
      V2_SIG,
      Buffer.concat([V2_SIG, Buffer.from([0x21, 0x11])]),
      Buffer.concat([V2_SIG, Buffer.from([0x20])]),
    );
    const tailArb = fc.oneof(
      fc.uint8Array({ maxLength: 120 }),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef.: \r\nTCP'), maxLength: 120 }).map((s) => Buffer.from(s, 'latin1')),
    );
    fc.assert(
      fc.property(modeArb, prefixArb, tailArb, cutsArb, (mode, prefix, tail, cuts) => {
        const input = Buffer.concat([prefix, Buffer.from(tail), Buffer.alloc(MAX_HEADER_BYTES, 0x41)]);
        const whole = feed(mode, input);
        assert.notEqual(whole.result.state, 'incomplete', 'still waiting after the longest possible header');
        if (whole.result.state === 'done') assertValidHeader(whole.result.header, input, whole.forwarded);
        assert.deepEqual(normalize(feed(mode, input, cuts)), normalize(whole));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('random splits of good headers give identical results', () => {
    fc.assert(
      fc.property(goodCaseArb, fc.boolean(), cutsArb, (c, anyMode, cuts) => {
        const mode = anyMode ? 'any' : c.mode;
        const { result, forwarded } = feed(mode, c.input, cuts);
        assert.equal(result.state, 'done');
        if (result.state !== 'done') return;
        assert.deepEqual(result.header, c.expected.header);
        assert.deepEqual(forwarded, c.expected.rest);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('mutated good headers parse to a valid header or an error, never hang', () => {
    fc.assert(
      fc.property(goodCaseArb, modeArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), cutsArb, (c, mode, mutations, cuts) => {
        const mutated = mutate(c.input, mutations);
        // Pad past the longest header the parser may wait for.
        const input = Buffer.concat([mutated, Buffer.alloc(MAX_HEADER_BYTES, 0x20)]);
        const whole = feed(mode, input);
        assert.notEqual(whole.result.state, 'incomplete', 'still waiting after the longest possible header');
        if (whole.result.state === 'done') assertValidHeader(whole.result.header, input, whole.forwarded);
        if (whole.result.state === 'error') assert.equal(whole.result.code, 'PROXY_HEADER_INVALID');
        assert.deepEqual(normalize(feed(mode, input, cuts)), normalize(whole));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('generated v1 TCP4/TCP6 headers round-trip', () => {
    const portArb = fc.integer({ min: 0, max: 65535 });
    const lineArb = fc.oneof(
      fc.record({ family: fc.constant('TCP4' as const), src: fc.ipV4(), dst: fc.ipV4(), sport: portArb, dport: portArb }),
      fc.record({ family: fc.constant('TCP6' as const), src: fc.ipV6(), dst: fc.ipV6(), sport: portArb, dport: portArb }),
    );
    fc.assert(
      fc.property(lineArb, cutsArb, (h, cuts) => {
        const line = `PROXY ${h.family} ${h.src} ${h.dst} ${h.sport} ${h.dport}\r\n`;
        const input = Buffer.from(`${line}SSH-2.0-x\r\n`, 'latin1');
        const { result } = feed('any', input, cuts);
        const valid = h.family === 'TCP4' || (isIPv6(h.src) && isIPv6(h.dst));
        if (!valid || line.length > V1_MAX_HEADER_BYTES) {
          assert.equal(result.state, 'error');
          return;
        }
        assert.equal(result.state, 'done', JSON.stringify(result));
        if (result.state !== 'done') return;
        assert.deepEqual(result.header, {
          version: 1, command: 'PROXY', family: h.family,
          sourceAddress: h.src, sourcePort: h.sport, destinationAddress: h.dst, destinationPort: h.dport,
          tlvs: [], headerBytes: line.length,
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('generated v2 headers with random TLVs round-trip', () => {
    const tlvArb = fc.record({ type: fc.integer({ min: 0, max: 255 }), value: fc.uint8Array({ maxLength: 40 }) });
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.uint8Array({ minLength: 36, maxLength: 36 }),
        fc.array(tlvArb, { maxLength: 6 }),
        cutsArb,
        (v4, addressBytes, tlvs, cuts) => {
          const block = Buffer.from(addressBytes.subarray(0, v4 ? 12 : 36));
          const body = Buffer.concat([block, ...tlvs.map((t) => tlv(t.type, Buffer.from(t.value)))]);
          const header = v2Header(0x21, v4 ? 0x11 : 0x21, body);
          const input = Buffer.concat([header, Buffer.from('SSH-2.0-x\r\n')]);
          const { result, forwarded } = feed('any', input, cuts);
          assert.equal(result.state, 'done');
          if (result.state !== 'done') return;
          assertValidHeader(result.header, input, forwarded);
          assert.deepEqual(result.header.tlvs, tlvs.map((t) => ({ type: t.type, length: t.value.length })));
          const toBytes = v4 ? ipv4Bytes : ipv6Bytes;
          const addressLength = v4 ? 4 : 16;
          assert.deepEqual(toBytes(result.header.sourceAddress ?? ''), block.subarray(0, addressLength));
          assert.deepEqual(toBytes(result.header.destinationAddress ?? ''), block.subarray(addressLength, 2 * addressLength));
          const portAt = v4 ? 8 : 32;
          assert.equal(result.header.sourcePort, block.readUInt16BE(portAt));
          assert.equal(result.header.destinationPort, block.readUInt16BE(portAt + 2));
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});
