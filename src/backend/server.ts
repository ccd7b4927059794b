import type { ServerConfig } from '../config/schema.js';
import { formatHostPort } from '../net/address.js';

export type ServerState = 'UP' | 'DOWN' | 'DRAINING';

/** One backend server's live state: what balancing, health and observers read. */
export class BackendServer {
  readonly pool: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly address: string;
  weight: number;
  backup: boolean;
  state: ServerState = 'UP';
  stateChangedAt = Date.now();
  stateReason: string | undefined;
  /** Spliced and in-setup sessions currently using this server. */
  activeSessions = 0;
  /** Sessions in their SSH handshake on this server (holding a slot). */
  handshakesActive = 0;
  maxStartups: number;
  consecutiveFailures = 0;
  lastIdentification: string | undefined;
  lastBannerMs: number | undefined;
  lastCheck: { readonly ok: boolean; readonly code?: string; readonly message?: string; readonly at: number } | undefined;

  constructor(pool: string, config: ServerConfig, defaultMaxStartups: number) {
    this.pool = pool;
    this.name = config.name;
    this.host = config.address.host;
    this.port = config.address.port;
    this.address = formatHostPort(config.address);
    this.weight = config.weight;
    this.backup = config.backup;
    this.maxStartups = config.maxStartups ?? defaultMaxStartups;
  }

  get usable(): boolean {
    return this.state === 'UP' && this.weight > 0;
  }

  get hasFreeSlot(): boolean {
    return this.handshakesActive < this.maxStartups;
  }
}
