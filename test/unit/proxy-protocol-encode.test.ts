import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyHeaderParser } from '../../src/protocol/proxy-protocol.js';
import { encodeProxyHeader, type ProxyEndpoints } from '../../src/protocol/proxy-protocol-encode.js';

const endpoints = (source: string, destination: string, sourcePort = 56324, destinationPort = 22): ProxyEndpoints => ({
  source: { address: source, port: sourcePort },
  destination: { address: destination, port: destinationPort },
});

const parsed = (header: Buffer): Record<string, unknown> => {
  const result = new ProxyHeaderParser('any').push(header);
  assert.equal(result.state, 'done');
  const { version, command, family, sourceAddress, sourcePort, destinationAddress, destinationPort, headerBytes } = result.state === 'done' ? result.header : ({} as never);
  assert.equal(headerBytes, header.length, 'the whole header, nothing more');
  return { version, command, family, sourceAddress, sourcePort, destinationAddress, destinationPort };
};

describe('PROXY headers the proxy sends (servers[].sendProxy)', () => {
  it('v1 TCP4, byte for byte as the spec writes it', () => {
    assert.equal(encodeProxyHeader('v1', endpoints('192.168.0.1', '192.168.0.11', 56324, 443)).toString('latin1'), 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
  });

  it('IPv4-mapped pairs go as TCP4; mixed families as TCP6 with the IPv4 side mapped', () => {
    assert.deepEqual(parsed(encodeProxyHeader('v2', endpoints('::ffff:203.0.113.7', '::ffff:10.0.0.1'))), {
      version: 2, command: 'PROXY', family: 'TCP4', sourceAddress: '203.0.113.7', sourcePort: 56324, destinationAddress: '10.0.0.1', destinationPort: 22,
    });
    assert.deepEqual(parsed(encodeProxyHeader('v1', endpoints('2001:db8::7', '10.0.0.1'))), {
      version: 1, command: 'PROXY', family: 'TCP6', sourceAddress: '2001:db8::7', sourcePort: 56324, destinationAddress: '::ffff:10.0.0.1', destinationPort: 22,
    });
  });

  it('v2 TCP6 round-trips through the listener\'s own parser, ports at their limits', () => {
    assert.deepEqual(parsed(encodeProxyHeader('v2', endpoints('fd00:1:2::3', '2001:db8::1:0:0:1', 65535, 1))), {
      version: 2, command: 'PROXY', family: 'TCP6', sourceAddress: 'fd00:1:2::3', sourcePort: 65535, destinationAddress: '2001:db8::1:0:0:1', destinationPort: 1,
    });
  });

  it("a health check (no client): v2 LOCAL, v1 UNKNOWN", () => {
    assert.equal(parsed(encodeProxyHeader('v2', undefined)).command, 'LOCAL');
    assert.equal(encodeProxyHeader('v1', undefined).toString('latin1'), 'PROXY UNKNOWN\r\n');
  });
});
