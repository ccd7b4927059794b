import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AdminConfig } from '../config/schema.js';
import { isLoopbackHost } from '../net/address.js';

/** What the admin endpoint serves for reading: metrics, healthz, readyz, and status (/api/status, /api/session, the page). */
export type AdminRead = 'metrics' | 'healthz' | 'readyz' | 'status';

/** Beyond loopback, status is closed by default: it lists client addresses. */
const OPEN_BEYOND_LOOPBACK: readonly AdminRead[] = ['metrics', 'healthz', 'readyz'];
const ALL_READS: readonly AdminRead[] = ['metrics', 'healthz', 'readyz', 'status'];

export interface AdminAuthSettings {
  /** A file holding the token (re-read on each check: a rotated Secret applies without a restart). */
  readonly tokenFile?: string | undefined;
  /** The environment variable holding it, when there is no file. */
  readonly tokenEnv: string;
  /** Reads allowed without the token; unset: all on a loopback bind, else all but status. */
  readonly open?: readonly AdminRead[] | undefined;
  readonly loopback: boolean;
}

/** Why a request was let in or not. */
export type AuthVerdict = 'ok' | 'missing' | 'wrong' | 'unset';

/**
 * The admin token: mutations need it, always; reads need it unless they are open. It is
 * compared in constant time (both sides hashed to the same length first).
 */
export class AdminAuth {
  private readonly settings: AdminAuthSettings;
  private readonly env: NodeJS.ProcessEnv;
  readonly openReads: ReadonlySet<AdminRead>;

  constructor(settings: AdminAuthSettings, env: NodeJS.ProcessEnv = process.env) {
    this.settings = settings;
    this.env = env;
    this.openReads = new Set(settings.open ?? (settings.loopback ? ALL_READS : OPEN_BEYOND_LOOPBACK));
  }

  /** Where the token comes from, for logs and errors. */
  get source(): string {
    return this.settings.tokenFile === undefined ? `$${this.settings.tokenEnv}` : this.settings.tokenFile;
  }

  /** Throws naming the file when admin.tokenFile is set but cannot be read or is empty (start refuses). */
  async verifyReadable(): Promise<boolean> {
    if (this.settings.tokenFile === undefined) return (await this.token()) !== undefined;
    const token = await this.token();
    if (token === undefined) throw new Error(`admin.tokenFile ${this.settings.tokenFile}: cannot be read, or holds no token`);
    return true;
  }

  /** Checks an Authorization header (`Bearer <token>`). */
  async check(header: string | undefined): Promise<AuthVerdict> {
    const expected = await this.token();
    if (expected === undefined) return 'unset';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match?.[1]) return 'missing';
    return timingSafeEqual(digest(match[1]), digest(expected)) ? 'ok' : 'wrong';
  }

  private token(): Promise<string | undefined> {
    return readAdminToken(this.settings, this.env).catch(() => undefined);
  }
}

/**
 * The admin token from its file, else from its environment variable; undefined when
 * there is none (or it is blank). Rejects with the file's error when it cannot be read.
 */
export async function readAdminToken(source: { readonly tokenFile?: string | undefined; readonly tokenEnv: string }, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const text = source.tokenFile === undefined ? env[source.tokenEnv] : await readFile(source.tokenFile, 'utf8');
  const token = text?.trim();
  return token === undefined || token === '' ? undefined : token;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The admin section's token and open reads. */
export function adminAuthFor(admin: AdminConfig, env: NodeJS.ProcessEnv = process.env): AdminAuth {
  return new AdminAuth({ tokenFile: admin.tokenFile, tokenEnv: admin.tokenEnv, open: admin.open, loopback: isLoopbackHost(admin.bind.host) }, env);
}
