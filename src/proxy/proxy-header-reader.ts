import type { Socket } from 'node:net';
import { readUntilVerdict } from '../net/socket-reading.js';
import { ProxyHeaderParser, type ProxyHeader, type ProxyProtocolMode } from '../protocol/proxy-protocol.js';

export type ProxyHeaderOutcome =
  | { readonly ok: true; readonly header: ProxyHeader; readonly rest: Buffer }
  | {
      readonly ok: false;
      readonly code: 'PROXY_HEADER_INVALID' | 'PROXY_HEADER_TIMEOUT' | 'CLIENT_CLOSED' | 'CLIENT_RESET';
      readonly message: string;
    };

export interface ProxyHeaderReading {
  /** Stops reading without reporting (the caller is closing the socket). */
  cancel(): void;
}

/**
 * Reads one PROXY protocol header off a freshly accepted socket, byte-exact:
 * the bytes after the header come back as `rest` and the socket is left paused,
 * nothing else consumed. Reports exactly once; the timer and listeners are
 * removed on every exit (src/net/socket-reading.ts). The socket is not closed here.
 */
export function readProxyHeader(socket: Socket, mode: ProxyProtocolMode, timeoutMs: number, onDone: (outcome: ProxyHeaderOutcome) => void): ProxyHeaderReading {
  const parser = new ProxyHeaderParser(mode);
  const closed = (): ProxyHeaderOutcome => ({ ok: false, code: 'CLIENT_CLOSED', message: 'client closed before a complete PROXY header' });
  return readUntilVerdict<ProxyHeaderOutcome>(
    socket,
    timeoutMs,
    {
      data: (chunk) => {
        const result = parser.push(chunk);
        if (result.state === 'incomplete') return undefined;
        if (result.state === 'error') return { ok: false, code: result.code, message: result.message };
        return { ok: true, header: result.header, rest: result.rest };
      },
      end: closed,
      close: closed,
      error: (error) => ({ ok: false, code: error.code === 'ECONNRESET' ? 'CLIENT_RESET' : 'CLIENT_CLOSED', message: `client: ${error.message} before a complete PROXY header` }),
      timeout: () => ({ ok: false, code: 'PROXY_HEADER_TIMEOUT', message: `no complete PROXY header within ${timeoutMs}ms` }),
    },
    (outcome) => {
      socket.pause();
      if (outcome) onDone(outcome);
    },
  );
}
