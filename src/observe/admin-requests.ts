import type { IncomingMessage } from 'node:http';
import type { ControlRequest } from '../proxy/server-control.js';
import type { AdminRead } from './admin-auth.js';

/** A mutation's JSON body is small: a pool, a server, a state or a weight. */
const MAX_BODY_BYTES = 4096;

/** Which read a path is, for admin.open; undefined: not a known endpoint (404 follows). */
export function readKind(path: string): AdminRead | undefined {
  if (path === '/metrics') return 'metrics';
  if (path === '/healthz') return 'healthz';
  if (path === '/readyz') return 'readyz';
  if (path === '/api/status' || path === '/api/session' || path === '/' || path === '/index.html') return 'status';
  return undefined;
}

/** One line for the log: `drain main/a`, `weight 3 main/a`, `resolve main`. */
export function describeControl(request: ControlRequest): string {
  if (request.action === 'resolve') return `resolve ${request.pool}`;
  return `${request.action === 'state' ? request.state : `weight ${request.weight}`} ${request.pool}/${request.server}`;
}

/** The request's body as JSON, bounded; a string says what was wrong. */
export function readJsonBody(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve(`the body is over ${MAX_BODY_BYTES} bytes`);
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        resolve('expected a JSON body, e.g. {"pool":"main","server":"a","state":"drain"}');
        return;
      }
      try {
        resolve(JSON.parse(text) as unknown);
      } catch (error) {
        resolve(`the body is not JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
  });
}

