import { request } from 'node:http';
import type { HostPort } from '../net/address.js';

/** What the admin endpoint answered. */
export interface AdminAnswer {
  readonly status: number;
  readonly body: string;
}

export interface AdminCall {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Sent as JSON. */
  readonly body?: Record<string, unknown>;
  /** Sent as `Authorization: Bearer …`. */
  readonly token?: string | undefined;
}

/** A wildcard bind is reached on loopback of its family. */
export function reachableHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/**
 * One request to a running proxy's admin endpoint (healthcheck, ctl): its answer, or a
 * string saying why there is none (an errno, or no answer within `timeoutMs`).
 */
export function callAdmin(target: HostPort, call: AdminCall, timeoutMs: number): Promise<AdminAnswer | string> {
  const body = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body));
  const headers: Record<string, string | number> = { Accept: 'application/json' };
  if (call.token !== undefined) headers['Authorization'] = `Bearer ${call.token}`;
  if (body !== undefined) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  return new Promise((resolve) => {
    const req = request({ host: target.host, port: target.port, path: call.path, method: call.method, timeout: timeoutMs, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', (error) => resolve(error.message));
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(`no answer within ${timeoutMs}ms`);
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end(body);
  });
}
