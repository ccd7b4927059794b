import type { Socket } from 'node:net';
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
 * removed on every exit. The socket is not closed here.
 */
export function readProxyHeader(
  socket: Socket,
  mode: ProxyProtocolMode,
  timeoutMs: number,
  onDone: (outcome: ProxyHeaderOutcome) => void,
): ProxyHeaderReading {
  const parser = new ProxyHeaderParser(mode);
  let finished = false;

  const finish = (outcome: ProxyHeaderOutcome | undefined): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onClose);
    socket.off('error', onError);
    socket.pause();
    if (outcome) onDone(outcome);
  };
  const onData = (chunk: Buffer): void => {
    const result = parser.push(chunk);
    if (result.state === 'incomplete') return;
    if (result.state === 'error') finish({ ok: false, code: result.code, message: result.message });
    else finish({ ok: true, header: result.header, rest: result.rest });
  };
  const onEnd = (): void => finish({ ok: false, code: 'CLIENT_CLOSED', message: 'client closed before a complete PROXY header' });
  const onClose = onEnd;
  const onError = (error: NodeJS.ErrnoException): void =>
    finish({
      ok: false,
      code: error.code === 'ECONNRESET' ? 'CLIENT_RESET' : 'CLIENT_CLOSED',
      message: `client: ${error.message} before a complete PROXY header`,
    });
  const timer = setTimeout(
    () => finish({ ok: false, code: 'PROXY_HEADER_TIMEOUT', message: `no complete PROXY header within ${timeoutMs}ms` }),
    timeoutMs,
  );

  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.on('error', onError);
  return { cancel: () => finish(undefined) };
}
