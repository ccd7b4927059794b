import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { formatHostPort, isLoopbackHost, type HostPort } from '../net/address.js';
import { AdminConnections } from './admin-connections.js';
import { liveSessionReply, type LiveSessionReply } from './log-identity.js';
import type { ProxyServer } from '../proxy/proxy-server.js';
import type { ProxyMetrics } from './metrics.js';
import { buildStatus, readiness, type ProxyStatus, type Readiness } from './status.js';
import { renderStatusPage } from './status-page.js';
import { AdminAuth } from './admin-auth.js';
import { describeControl, readJsonBody, readKind } from './admin-requests.js';
import { applyControl, controlledServer, parseControlRequest, type ControlOutcome, type ControlRequest } from '../proxy/server-control.js';

/** The mutations, by path (docs/operations.md, "Runtime control"). */
const MUTATIONS: Readonly<Record<string, ControlRequest['action']>> = {
  '/api/server/state': 'state',
  '/api/server/weight': 'weight',
  '/api/pool/resolve': 'resolve',
};

/** What the admin endpoint serves. By default this process's own; a cluster primary passes one built from its workers (src/cluster/). */
export interface AdminView {
  metrics(): Promise<{ readonly contentType: string; readonly body: string }>;
  /** `pool`: also require a server UP in that pool (`/readyz?pool=NAME`). */
  readiness(pool?: string): Promise<Readiness>;
  status(): Promise<ProxyStatus>;
  /** The spliced session whose backend connection has this local address and port (sshd's `from A port P`). */
  session(address: string, port: number): Promise<LiveSessionReply | undefined>;
  /** An operator's change: applied everywhere (every worker), answered once. */
  control(request: ControlRequest): Promise<ControlOutcome>;
}

export type AdminOptions = {
  readonly bind: HostPort;
  /** Admin connections at once (more are closed at accept); default 32. */
  readonly maxConnections?: number;
  /** Idle admin connections are closed after this; default 10 s. */
  readonly idleTimeoutMs?: number;
  readonly logger: Logger;
  readonly startedAt: number;
  /** Who may change things and read what (default: no token, every read open on loopback). */
  readonly auth?: AdminAuth;
} & ({ readonly proxy: ProxyServer; readonly metrics: ProxyMetrics; readonly resolve?: (pool: string) => Promise<number> } | { readonly view: AdminView });

function localView(proxy: ProxyServer, metrics: ProxyMetrics, startedAt: number, resolve: ((pool: string) => Promise<number>) | undefined): AdminView {
  return {
    metrics: async () => ({ contentType: metrics.contentType, body: await metrics.scrape() }),
    readiness: (pool) => Promise.resolve(readiness(proxy, pool)),
    status: () => Promise.resolve(buildStatus({ proxy, startedAt, totals: (pool, server) => metrics.serverTotals(pool, server) })),
    session: (address, port) => Promise.resolve(liveSessionReply(proxy.live.find(address, port))),
    control: (request) => controlLocally(proxy.pools, request, resolve),
  };
}

/** Applies a control request to this process's pools; a re-resolve asks `resolve` (the process's DNS sets). */
export async function controlLocally(pools: ProxyServer['pools'], request: ControlRequest, resolve: ((pool: string) => Promise<number>) | undefined): Promise<ControlOutcome> {
  if (request.action !== 'resolve') return applyControl(pools, request);
  const pool = pools.get(request.pool);
  if (!pool) return { ok: false, status: 404, error: 'NO_POOL', message: `no pool "${request.pool}"` };
  const resolvedSets = (await resolve?.(pool.name)) ?? 0;
  return { ok: true, pool: pool.name, servers: pool.servers.map(controlledServer), resolvedSets };
}

type Reply = { readonly status: number; readonly type: string; readonly body: string | Buffer };

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The admin HTTP listener: /metrics, /healthz, /readyz, /api/status, /api/session and the HTML
 * status page at /, and, behind the admin token, POST mutations (a server's state or
 * weight, a pool's re-resolve). Reads not listed in admin.open need the token too.
 * A separate server from the data plane, so it answers at the connection limit.
 */
export class AdminServer {
  private readonly options: AdminOptions;
  private readonly view: AdminView;
  private readonly server: Server;
  private readonly connections: AdminConnections;
  private readonly auth: AdminAuth;
  private closing: Promise<void> | undefined;

  constructor(options: AdminOptions) {
    this.options = options;
    this.view = 'view' in options ? options.view : localView(options.proxy, options.metrics, options.startedAt, options.resolve);
    this.auth = options.auth ?? new AdminAuth({ tokenEnv: 'SBP_ADMIN_TOKEN', loopback: isLoopbackHost(options.bind.host) }, {});
    const idleTimeoutMs = options.idleTimeoutMs ?? 10_000;
    // Checked every second (Node's default is 30 s), so a slowloris is cut near headersTimeout.
    this.server = createServer({ connectionsCheckingInterval: 1000 }, (request, response) => this.handle(request, response));
    // Keep slow or idle admin clients from holding sockets, and so descriptors the data plane needs.
    this.connections = new AdminConnections(options.maxConnections ?? 32);
    this.server.on('connection', (socket: Socket) => this.connections.accept(socket));
    this.server.timeout = idleTimeoutMs;
    // A real client (kubelet, Prometheus, curl) sends its headers at once: 3 s is ample, and a
    // client trickling header lines is cut then (and evicted before that when the limit is reached).
    this.server.headersTimeout = Math.min(3_000, idleTimeoutMs);
    this.server.requestTimeout = 15_000;
    this.server.keepAliveTimeout = Math.min(5_000, idleTimeoutMs);
    this.server.maxHeadersCount = 50;
    this.server.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  get port(): number | undefined {
    const address = this.server.address();
    return address !== null && typeof address === 'object' ? address.port : undefined;
  }

  async listen(): Promise<void> {
    const { bind, logger } = this.options;
    // A token file that cannot be read fails start; no token at all only refuses every change.
    const tokenSet = await this.auth.verifyReadable();
    if (!tokenSet) logger.info({ event: 'admin-token', source: this.auth.source }, `no admin token (${this.auth.source}): every change through the admin API is refused`);
    if (!isLoopbackHost(bind.host)) {
      const open = [...this.auth.openReads].join(', ');
      logger.warn(
        { event: 'admin-exposed', bind: formatHostPort(bind), open: [...this.auth.openReads] },
        `admin endpoint listens on a non-loopback address; open without the token: ${open || 'nothing'}. Restrict access (a NetworkPolicy)`,
      );
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(new Error(`admin: cannot listen on ${formatHostPort(bind)}: ${error.message}`, { cause: error }));
      };
      this.server.once('error', onError);
      this.server.listen({ host: bind.host, port: bind.port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => logger.error({ event: 'admin-error', err: error }, 'admin server error'));
        logger.info({ event: 'admin-listening', address: formatHostPort({ host: bind.host, port: this.port ?? bind.port }) }, 'admin listening');
        resolve();
      });
    });
  }

  /** Stops listening and drops open connections (idempotent). */
  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    this.connections.busy(request.socket, response);
    request.on('error', () => response.destroy());
    response.on('error', () => undefined);
    const method = request.method ?? 'GET';
    const [path = '/', query = ''] = (request.url ?? '/').split('?', 2);
    const mutation = MUTATIONS[path];
    const allowed = mutation === undefined ? 'GET, HEAD' : 'POST';
    if ((mutation === undefined && method !== 'GET' && method !== 'HEAD') || (mutation !== undefined && method !== 'POST')) {
      response.setHeader('Allow', allowed);
      const message = mutation === undefined ? `${path} is read with GET or HEAD; changes are POSTed to ${Object.keys(MUTATIONS).join(', ')}` : `${path} is a change: POST it, with the admin token`;
      this.send(request, response, json(405, { error: 'METHOD_NOT_ALLOWED', message }));
      return;
    }
    const answer = mutation === undefined ? this.read(request, path, new URLSearchParams(query)) : this.mutate(request, mutation);
    answer.then(
      (reply) => {
        if (reply.status === 401) response.setHeader('WWW-Authenticate', 'Bearer realm="ssh-banner-proxy admin"');
        this.send(request, response, reply);
      },
      (error: unknown) => {
        this.options.logger.error({ event: 'admin-error', path, err: error }, 'admin request failed');
        this.send(request, response, json(500, { error: 'INTERNAL', message: 'see the proxy log' }));
      },
    );
  }

  private async read(request: IncomingMessage, path: string, query: URLSearchParams): Promise<Reply> {
    const kind = readKind(path);
    if (kind !== undefined && !this.auth.openReads.has(kind)) {
      const refused = await this.refusal(request, `${path} (${kind}) is not open without the token here (admin.open)`);
      if (refused) return refused;
    }
    return this.route(path, query);
  }

  private async mutate(request: IncomingMessage, action: ControlRequest['action']): Promise<Reply> {
    const refused = await this.refusal(request, 'changes need the admin token');
    if (refused) return refused;
    const body = await readJsonBody(request);
    if (typeof body === 'string') return json(400, { error: 'BAD_BODY', message: body });
    const parsed = parseControlRequest(action, body);
    if (typeof parsed === 'string') return json(400, { error: 'BAD_REQUEST', message: parsed });
    const outcome = await this.view.control(parsed);
    this.options.logger.info({ event: 'admin-action', ...parsed, client: request.socket.remoteAddress, ok: outcome.ok }, outcome.ok ? `admin: ${describeControl(parsed)}` : `admin: ${describeControl(parsed)} refused: ${outcome.message}`);
    return outcome.ok ? json(200, outcome) : json(outcome.status, { error: outcome.error, message: outcome.message });
  }

  /** A 401/403 reply when the request does not carry the token, else undefined. */
  private async refusal(request: IncomingMessage, what: string): Promise<Reply | undefined> {
    const verdict = await this.auth.check(request.headers.authorization);
    if (verdict === 'ok') return undefined;
    if (verdict === 'unset') return json(403, { error: 'NO_TOKEN', message: `${what}, and none is set (${this.auth.source} is empty; admin.tokenFile or admin.tokenEnv): refused` });
    return json(401, { error: verdict === 'missing' ? 'TOKEN_REQUIRED' : 'TOKEN_WRONG', message: `${what}: send Authorization: Bearer <token> (from ${this.auth.source})` });
  }

  private async route(path: string, query: URLSearchParams): Promise<Reply> {
    const { view } = this;
    switch (path) {
      case '/metrics': {
        const scraped = await view.metrics();
        return { status: 200, type: scraped.contentType, body: scraped.body };
      }
      case '/healthz':
        return json(200, { status: 'ok' });
      case '/readyz': {
        const verdict = await view.readiness(query.get('pool') ?? undefined);
        return verdict.ready ? json(200, { status: 'ready' }) : json(503, { status: 'not ready', reason: verdict.reason, message: verdict.message });
      }
      case '/api/status':
        return json(200, await view.status());
      case '/api/session':
        return this.lookupSession(query);
      case '/':
      case '/index.html':
        return { status: 200, type: 'text/html; charset=utf-8', body: renderStatusPage(await view.status()) };
      default:
        return json(404, { error: 'NOT_FOUND', message: `no such endpoint: ${path}` });
    }
  }

  /** `?address=A&port=P`, the words of sshd's `from A port P`: the client behind that backend connection. */
  private async lookupSession(query: URLSearchParams): Promise<Reply> {
    const address = query.get('address') ?? '';
    const portText = query.get('port') ?? '';
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
    if (isIP(address) === 0 || !(port >= 1 && port <= 65535)) {
      return json(400, { error: 'BAD_QUERY', message: 'give the backend connection\'s end as sshd logs it: /api/session?address=<IP address>&port=<1-65535>' });
    }
    const session = await this.view.session(address, port);
    if (session === undefined) return json(404, { error: 'NO_SESSION', message: `no spliced session has a backend connection from ${formatHostPort({ host: address, port })}` });
    return json(200, session);
  }

  private send(request: IncomingMessage, response: ServerResponse, reply: Reply): void {
    const body = typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body;
    response.writeHead(reply.status, {
      'Content-Type': reply.type,
      'Content-Length': body.length,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  }
}

function json(status: number, value: unknown): Reply {
  return { status, type: JSON_TYPE, body: `${JSON.stringify(value, null, 2)}\n` };
}
