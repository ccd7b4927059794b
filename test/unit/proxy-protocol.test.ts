import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ProxyHeaderParser,
  formatIPv6,
  type ProxyHeaderParserOptions,
  type ProxyParseResult,
  type ProxyProtocolMode,
} from '../../src/protocol/proxy-protocol.js';
import {
  SSH_CLIENT_IDENT,
  badProxyCases,
  goodProxyCases,
  incompleteProxyCases,
  ipv6Bytes,
  tlv,
  v2AddressBlock,
  v2Header,
} from '../fixtures/proxy/proxy-protocol-corpus.js';

interface Outcome {
  result: ProxyParseResult;
  /** Bytes pushed when the parser finished (all of them if it did not). */
  bytesPushed: number;
  /** rest plus any chunks never pushed: what a session would forward to the backend. */
  forwarded: Buffer;
}

function feedChunks(mode: ProxyProtocolMode, chunks: readonly Buffer[], options?: ProxyHeaderParserOptions): Outcome {
  const parser = new ProxyHeaderParser(mode, options);
  let result: ProxyParseResult = { state: 'incomplete' };
  let bytesPushed = 0;
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i] as Buffer;
    result = parser.push(chunk);
    bytesPushed += chunk.length;
    if (result.state !== 'incomplete') {
      const unpushed = chunks.slice(i + 1);
      const rest = result.state === 'done' ? result.rest : Buffer.alloc(0);
      return { result, bytesPushed, forwarded: Buffer.concat([rest, ...unpushed]) };
    }
  }
  return { result, bytesPushed, forwarded: Buffer.alloc(0) };
}

const whole = (mode: ProxyProtocolMode, input: Buffer): Outcome => feedChunks(mode, [input]);
const byteByByte = (input: Buffer): Buffer[] => Array.from(input, (b) => Buffer.from([b]));

/** Comparable form: everything but the chunking-dependent byte count. */
function normalize(outcome: Outcome): unknown {
  const { result } = outcome;
  switch (result.state) {
    case 'incomplete':
      return { state: 'incomplete' };
    case 'error':
      return { state: 'error', code: result.code, message: result.message };
    case 'done':
      return { state: 'done', header: result.header, forwarded: outcome.forwarded.toString('hex') };
  }
}

const allCases = [...goodProxyCases, ...badProxyCases, ...incompleteProxyCases];

describe('PROXY header corpus, fed whole', () => {
  for (const c of goodProxyCases) {
    it(`parses: ${c.name}`, () => {
      for (const mode of [c.mode, 'any'] as const) {
        const { result } = whole(mode, c.input);
        assert.equal(result.state, 'done', JSON.stringify(result));
        if (result.state !== 'done') return;
        assert.deepEqual(result.header, c.expected.header);
        assert.deepEqual(result.rest, c.expected.rest);
        assert.equal(result.header.headerBytes + result.rest.length, c.input.length);
      }
    });
  }

  for (const c of badProxyCases) {
    it(`rejects: ${c.name}`, () => {
      const { result } = whole(c.mode, c.input);
      assert.equal(result.state, 'error', JSON.stringify(result));
      if (result.state !== 'error') return;
      assert.equal(result.code, c.expected.code);
      assert.ok(result.message.includes(c.expected.messageIncludes), `message: ${result.message}`);
    });
  }

  for (const c of incompleteProxyCases) {
    it(`waits for more: ${c.name}`, () => {
      assert.deepEqual(whole(c.mode, c.input).result, { state: 'incomplete' });
    });
  }

  it('rejects each version in the other mode at the first byte', () => {
    for (const c of goodProxyCases) {
      const other = c.mode === 'v1' ? 'v2' : 'v1';
      const outcome = feedChunks(other, byteByByte(c.input));
      assert.equal(outcome.result.state, 'error', c.name);
      assert.equal(outcome.bytesPushed, 1, c.name);
    }
  });
});

describe('PROXY header corpus, fed byte by byte', () => {
  for (const c of allCases) {
    it(c.name, () => {
      const expected = whole(c.mode, c.input);
      const outcome = feedChunks(c.mode, byteByByte(c.input));
      assert.deepEqual(normalize(outcome), normalize(expected));
      if (c.expected.state === 'done') {
        // Done exactly when the last header byte arrives, and not before.
        assert.equal(outcome.bytesPushed, c.expected.header.headerBytes);
        assert.deepEqual(outcome.forwarded, c.expected.rest);
      }
      if (c.expected.state === 'error') {
        // Reported as soon as the input can no longer become a header.
        assert.equal(outcome.bytesPushed, c.expected.errorAfterBytes, outcome.result.state === 'error' ? outcome.result.message : '');
      }
    });
  }
});

describe('PROXY header corpus, split at every position', () => {
  for (const c of allCases) {
    it(c.name, () => {
      const expected = normalize(whole(c.mode, c.input));
      for (let at = 0; at <= c.input.length; at++) {
        const outcome = feedChunks(c.mode, [c.input.subarray(0, at), c.input.subarray(at)]);
        assert.deepEqual(normalize(outcome), expected, `split at ${at}`);
      }
    });
  }

  it('splits into three pieces give the same result (TCP6 with TLVs)', () => {
    const c = goodProxyCases.find((g) => g.name === 'v2 PROXY TCP6 with TLVs');
    assert.ok(c);
    const expected = normalize(whole(c.mode, c.input));
    const n = c.input.length;
    for (let i = 0; i <= n; i += 7) {
      for (let j = i; j <= n; j += 5) {
        const chunks: Buffer[] = [c.input.subarray(0, i), c.input.subarray(i, j), c.input.subarray(j)];
        assert.deepEqual(normalize(feedChunks(c.mode, chunks)), expected, `split at ${i}, ${j}`);
      }
    }
  });
});

describe('ProxyHeaderParser contract', () => {
  it('throws when pushed after done', () => {
    const c = goodProxyCases[0];
    assert.ok(c);
    const parser = new ProxyHeaderParser('any');
    assert.equal(parser.push(c.input).state, 'done');
    assert.throws(() => parser.push(Buffer.from('x')), /after the parser finished \(done\)/);
  });

  it('throws when pushed after error', () => {
    const parser = new ProxyHeaderParser('any');
    assert.equal(parser.push(SSH_CLIENT_IDENT).state, 'error');
    assert.throws(() => parser.push(Buffer.from('x')), /after the parser finished \(error\)/);
  });

  it('treats an empty chunk as no progress', () => {
    const parser = new ProxyHeaderParser('any');
    assert.deepEqual(parser.push(Buffer.alloc(0)), { state: 'incomplete' });
    assert.equal(parser.push(Buffer.from('PROXY UNKNOWN\r\n')).state, 'done');
  });

  it('returns the bytes after the header from the last chunk', () => {
    const parser = new ProxyHeaderParser('v1');
    assert.equal(parser.push(Buffer.from('PROXY UNKNOWN\r')).state, 'incomplete');
    const result = parser.push(Buffer.concat([Buffer.from('\n'), SSH_CLIENT_IDENT]));
    assert.equal(result.state, 'done');
    if (result.state === 'done') assert.deepEqual(result.rest, SSH_CLIENT_IDENT);
  });

  it('rejects bad constructor arguments', () => {
    assert.throws(() => new ProxyHeaderParser('v3' as ProxyProtocolMode), TypeError);
    assert.throws(() => new ProxyHeaderParser('v2', { maxV2Length: 70000 }), RangeError);
    assert.throws(() => new ProxyHeaderParser('v2', { maxV2Length: -1 }), RangeError);
  });

  it('accepts v2 headers up to maxV2Length and rejects longer ones at byte 16', () => {
    const body = Buffer.concat([v2AddressBlock('TCP4', '1.2.3.4', '5.6.7.8', 1, 2), tlv(0x04, Buffer.alloc(5000))]);
    const input = v2Header(0x21, 0x11, body);
    const big = feedChunks('v2', [input], { maxV2Length: 65535 });
    assert.equal(big.result.state, 'done');
    if (big.result.state === 'done') assert.deepEqual(big.result.header.tlvs, [{ type: 0x04, length: 5000 }]);
    const capped = feedChunks('v2', byteByByte(input));
    assert.equal(capped.result.state, 'error');
    assert.equal(capped.bytesPushed, 16);
    if (capped.result.state === 'error') assert.match(capped.result.message, /length field 5015 exceeds the limit of 4096 bytes/);
  });

  it('with maxV2Length 0 accepts only empty v2 LOCAL headers', () => {
    assert.equal(feedChunks('v2', [v2Header(0x20, 0x00, Buffer.alloc(0))], { maxV2Length: 0 }).result.state, 'done');
    const proxy = v2Header(0x21, 0x11, v2AddressBlock('TCP4', '1.2.3.4', '5.6.7.8', 1, 2));
    assert.equal(feedChunks('v2', [proxy], { maxV2Length: 0 }).result.state, 'error');
  });
});

describe('formatIPv6', () => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1::1', '2001:0:0:1::1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['::ffff:c000:0280', '::ffff:192.0.2.128'],
    ['fe80::', 'fe80::'],
  ];
  for (const [input, text] of cases) {
    it(`${input} -> ${text}`, () => assert.equal(formatIPv6(ipv6Bytes(input)), text));
  }
});
