/**
 * PROXY protocol fuzzing: 10^5 mutated headers (bit flips, truncations, splices of the
 * good corpus, random bytes) through the parser, fed in random cuts, and the bad corpus
 * plus random garbage through a live listener. The parser must never throw, never
 * accept an address that is not one, and agree with itself however the input is cut;
 * the listener must splice nothing that was bad and give every budget place back.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { ProxyHeaderParser, type ProxyParseResult, type ProxyProtocolMode } from '../../src/protocol/proxy-protocol.js';
import { startFixtureBackend } from '../../test/fixtures/backends/hostile-backends.js';
import { badProxyCases, goodProxyCases } from '../../test/fixtures/proxy/proxy-protocol-corpus.js';
import { startProxy } from '../../test/fixtures/proxy/proxy.js';
import { rawExchange } from '../../test/fixtures/clients/raw-client.js';
import { measured, type FaultResult } from './harness.js';

const MODES: readonly ProxyProtocolMode[] = ['v1', 'v2', 'any'];

function mutate(): Buffer {
  const base = goodProxyCases[randomInt(goodProxyCases.length)]?.input ?? Buffer.alloc(0);
  const input = Buffer.from(base);
  switch (randomInt(5)) {
    case 0:
      for (let flips = randomInt(1, 4); flips > 0 && input.length > 0; flips -= 1) {
        const at = randomInt(input.length);
        input[at] = (input[at] ?? 0) ^ (1 << randomInt(8));
      }
      return input;
    case 1:
      return input.subarray(0, randomInt(input.length + 1));
    case 2: {
      const other = goodProxyCases[randomInt(goodProxyCases.length)]?.input ?? Buffer.alloc(0);
      return Buffer.concat([input.subarray(0, randomInt(input.length + 1)), other.subarray(randomInt(other.length + 1))]);
    }
    case 3:
      return randomBytes(randomInt(1, 300));
    default:
      if (input.length > 0) input[randomInt(input.length)] = randomInt(256);
      return input;
  }
}

function parse(mode: ProxyProtocolMode, input: Buffer, cut: number): ProxyParseResult {
  const parser = new ProxyHeaderParser(mode);
  const first = parser.push(input.subarray(0, cut));
  if (first.state !== 'incomplete') return first;
  return parser.push(input.subarray(cut));
}

function verdict(result: ProxyParseResult): string {
  if (result.state === 'done') return `done:${JSON.stringify(result.header)}`;
  return result.state === 'error' ? 'error' : 'incomplete';
}

export async function proxyFuzz(inputs: number): Promise<FaultResult> {
  return measured('proxy-protocol-fuzz', `${inputs} mutated PROXY headers through the parser (two random cuts each), then the bad corpus and random garbage through a live listener`, async () => {
    let threw = 0;
    let badAddress = 0;
    let disagreed = 0;
    let accepted = 0;
    for (let index = 0; index < inputs; index += 1) {
      const input = mutate();
      const mode = MODES[index % MODES.length] as ProxyProtocolMode;
      try {
        const whole = parse(mode, input, input.length);
        const cut = parse(mode, input, randomInt(input.length + 1));
        if (verdict(whole) !== verdict(cut) && whole.state !== 'incomplete' && cut.state !== 'incomplete') disagreed += 1;
        if (whole.state === 'done') {
          accepted += 1;
          const header = whole.header;
          if (header.command === 'PROXY' && header.sourceAddress !== undefined && isIP(header.sourceAddress) === 0) badAddress += 1;
        }
      } catch {
        threw += 1;
      }
    }
    // Live: every bad case and 500 random garbage headers, none may reach the backend.
    const echo = await startFixtureBackend('ssh-echo');
    const proxy = await startProxy({
      servers: [{ name: 'echo', host: echo.host, port: echo.port }],
      listener: { proxyProtocol: { accept: 'any', trusted: ['127.0.0.1/32'], timeout: '300ms' } },
      logLevel: 'info',
    });
    let spliced = 0;
    try {
      // Cases bad in every mode (some are bad only in v1 or v2 mode, and fine under 'any').
      const inputsLive = [...badProxyCases.filter((bad) => bad.mode === 'any').map((bad) => bad.input), ...Array.from({ length: 500 }, () => Buffer.concat([randomBytes(randomInt(1, 200)), Buffer.from('\r\nSSH-2.0-x\r\n')]))];
      for (let start = 0; start < inputsLive.length; start += 50) {
        const batch = inputsLive.slice(start, start + 50);
        const results = await Promise.all(batch.map((send) => rawExchange({ port: proxy.port, send, timeoutMs: 3000 })));
        spliced += results.filter((result) => result.data.toString('latin1').includes('EchoFixture')).length;
      }
      const liveCount = inputsLive.length;
      return {
        sessionsLost: 0,
        streamsChecked: 0,
        streamsCorrupt: 0,
        accountingOk: threw === 0 && badAddress === 0 && disagreed === 0 && spliced === 0 && echo.connections === 0 && proxy.runtime.server.activeConnections === 0,
        figures: { parserInputs: inputs, parserThrew: threw, acceptedAsValid: accepted, invalidAddressesAccepted: badAddress, verdictsThatDependedOnTheCut: disagreed, liveInputs: liveCount, liveSpliced: spliced, backendConnections: echo.connections },
      };
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });
}
