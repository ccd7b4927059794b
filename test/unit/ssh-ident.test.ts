import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdentParser, type IdentResult } from '../../src/protocol/ssh-ident.js';

/** Feeds the whole input one byte at a time, as a slow network would. */
function feedBytewise(input: string | Buffer, parser = new IdentParser()): IdentResult {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  let result: IdentResult = { state: 'incomplete' };
  for (const byte of bytes) {
    result = parser.push(Buffer.of(byte));
    if (result.state !== 'incomplete') break;
  }
  return result;
}

function feedWhole(input: string | Buffer): IdentResult {
  return new IdentParser().push(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
}

function expectIdentified(result: IdentResult): Extract<IdentResult, { state: 'identified' }> {
  assert.equal(result.state, 'identified', JSON.stringify(result));
  return result as Extract<IdentResult, { state: 'identified' }>;
}

function expectRejected(result: IdentResult, code: string): Extract<IdentResult, { state: 'rejected' }> {
  assert.equal(result.state, 'rejected', JSON.stringify(result));
  const rejected = result as Extract<IdentResult, { state: 'rejected' }>;
  assert.equal(rejected.code, code, rejected.message);
  return rejected;
}

describe('IdentParser', () => {
  it('parses an OpenSSH identification fed byte by byte', () => {
    const result = expectIdentified(feedBytewise('SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n'));
    assert.equal(result.identification.protoVersion, '2.0');
    assert.equal(result.identification.softwareVersion, 'OpenSSH_9.6p1');
    assert.equal(result.identification.comments, 'Ubuntu-3ubuntu13');
    assert.equal(result.identification.lineEnding, 'crlf');
    assert.equal(result.identEndOffset, 'SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n'.length);
  });

  it('reports where the identification ends when binary packets follow in the same chunk', () => {
    const ident = 'SSH-2.0-X\r\n';
    const result = expectIdentified(feedWhole(Buffer.concat([Buffer.from(ident), Buffer.from([0, 0, 1, 0x0c, 0x0a, 20])])));
    assert.equal(result.identEndOffset, ident.length);
  });

  it('keeps lines before the identification and returns them', () => {
    const result = expectIdentified(feedBytewise('Welcome to host\r\nauthorised use only\r\nSSH-2.0-Srv_1\r\n'));
    assert.deepEqual(result.preLines, ['Welcome to host', 'authorised use only']);
  });

  it('accepts SSH-1.99 as compatible with 2.0', () => {
    assert.equal(expectIdentified(feedBytewise('SSH-1.99-Cisco-1.25\r\n')).identification.protoVersion, '1.99');
  });

  it('rejects SSH-1.5 as an unsupported protocol version', () => {
    const result = expectRejected(feedBytewise('SSH-1.5-OldServer\r\n'), 'SSH_VERSION_UNSUPPORTED');
    assert.match(result.message, /1\.5/);
  });

  it('accepts an identification of exactly 255 bytes including CR LF', () => {
    const line = `SSH-2.0-${'x'.repeat(255 - 2 - 8)}`;
    assert.equal(line.length + 2, 255);
    expectIdentified(feedBytewise(`${line}\r\n`));
  });

  it('rejects an identification of 256 bytes as soon as the limit is passed', () => {
    const line = `SSH-2.0-${'x'.repeat(256 - 2 - 8)}`;
    const parser = new IdentParser();
    const bytes = Buffer.from(`${line}\r\n`);
    let consumedWhenRejected = -1;
    for (let index = 0; index < bytes.length; index += 1) {
      if (parser.push(bytes.subarray(index, index + 1)).state === 'rejected') {
        consumedWhenRejected = index + 1;
        break;
      }
    }
    assert.ok(consumedWhenRejected > 0 && consumedWhenRejected <= 255, `rejected after ${consumedWhenRejected} bytes`);
  });

  it('rejects a NUL byte in the identification', () => {
    expectRejected(feedBytewise('SSH-2.0-Bad\0Server\r\n'), 'BANNER_INVALID');
  });

  it('accepts a bare LF line ending but reports it', () => {
    assert.equal(expectIdentified(feedBytewise('SSH-2.0-LfOnly\n')).identification.lineEnding, 'lf');
  });

  it('rejects a CR that is not followed by LF', () => {
    expectRejected(feedBytewise('SSH-2.0-Odd\rX\r\n'), 'BANNER_INVALID');
  });

  it('stays incomplete while the identification has no line end yet', () => {
    assert.equal(feedBytewise('SSH-2.0-Partial').state, 'incomplete');
  });

  it('rejects a malformed identification without software version', () => {
    expectRejected(feedBytewise('SSH-2.0\r\n'), 'BANNER_INVALID');
  });

  it('recognises sshd throttle notices as THROTTLED', () => {
    assert.equal(expectRejected(feedBytewise('Exceeded MaxStartups\r\n'), 'THROTTLED').notice, 'Exceeded MaxStartups');
    expectRejected(feedBytewise('Not allowed at this time\r\n'), 'THROTTLED');
  });

  it('recognises a throttle notice without line end when the stream closes', () => {
    const parser = new IdentParser();
    assert.equal(parser.push(Buffer.from('Exceeded MaxStartups')).state, 'incomplete');
    expectRejected(parser.end(), 'THROTTLED');
  });

  it('names HTTP, TLS, SMTP and FTP servers as NOT_SSH', () => {
    assert.equal(expectRejected(feedBytewise('HTTP/1.1 400 Bad Request\r\n'), 'NOT_SSH').protocol, 'http');
    assert.equal(expectRejected(feedBytewise(Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28])), 'NOT_SSH').protocol, 'tls');
    assert.equal(expectRejected(feedBytewise('220 mail.example.com ESMTP Postfix\r\n'), 'NOT_SSH').protocol, 'smtp');
    assert.equal(expectRejected(feedBytewise('220 (vsFTPd 3.0.3)\r\n'), 'NOT_SSH').protocol, 'ftp');
  });

  it('rejects HTTP after its first five bytes, without waiting for a line end', () => {
    const parser = new IdentParser();
    assert.equal(parser.push(Buffer.from('HTTP')).state, 'incomplete');
    assert.equal(parser.push(Buffer.from('/')).state, 'rejected');
  });

  it('names binary garbage as NOT_SSH binary', () => {
    assert.equal(expectRejected(feedBytewise(Buffer.from([0x8f, 0x01, 0xfe, 0x22])), 'NOT_SSH').protocol, 'binary');
  });

  it('caps the number of lines before the identification', () => {
    const lines = Array.from({ length: 33 }, (_, index) => `line ${index}\r\n`).join('');
    const result = expectRejected(feedBytewise(`${lines}SSH-2.0-Late\r\n`), 'BANNER_INVALID');
    assert.match(result.message, /more than 32 lines/);
  });

  it('caps the bytes before the identification, even within one endless line', () => {
    expectRejected(feedBytewise('a'.repeat(9000)), 'BANNER_INVALID');
  });

  it('honours custom limits', () => {
    const parser = new IdentParser({ maxPreLines: 1, maxPreBytes: 100 });
    expectRejected(feedBytewise('one\r\ntwo\r\nSSH-2.0-X\r\n', parser), 'BANNER_INVALID');
  });

  it('returns the same verdict for every way of splitting the input', () => {
    const input = Buffer.from('notice: maintenance at 5pm\r\nSSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\x00\x00\x01');
    const whole = feedWhole(input);
    for (let split = 1; split < input.length; split += 1) {
      const parser = new IdentParser();
      let result = parser.push(input.subarray(0, split));
      if (result.state === 'incomplete') result = parser.push(input.subarray(split));
      assert.deepEqual(result, whole, `split at ${split}`);
    }
  });
});
