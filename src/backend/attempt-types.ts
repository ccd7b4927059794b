import type { Socket } from 'node:net';
import type { AttemptFailureCode } from '../errors.js';
import type { TransparentSockets } from '../net/transparent-socket.js';
import type { IdentLimits, SshIdentification } from '../protocol/ssh-ident.js';

export interface AttemptOptions {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly bannerTimeoutMs: number;
  /**
   * Written right after connect (health checks and probes identify themselves), or after
   * `sendAfterSilenceMs`. A function is asked when it is time (a session's client may
   * identify itself meanwhile); undefined then sends nothing.
   */
  readonly sendOnConnect?: Buffer | (() => Buffer | undefined);
  /**
   * Hold `sendOnConnect` back this long after connect, and send it only if the server has
   * neither identified nor closed by then (it is sent at once on success). A server that
   * closes at accept (TCP wrappers) then sees no bytes of ours, so the close stays a FIN
   * instead of becoming the kernel's reset; one that waits to be spoken to (HTTP, TLS)
   * still gets the line and answers.
   */
  readonly sendAfterSilenceMs?: number;
  /** With `sendAfterSilenceMs`: send it at once on success if it had not gone out (default true: a client must). */
  readonly sendOnSuccess?: boolean;
  readonly identLimits?: IdentLimits;
  /**
   * Read into a reused buffer (`onread`, see src/net/reused-reads.ts): the socket then
   * emits no 'data' events; its bytes go to its read target. For sockets a Splice takes over.
   */
  readonly reuseReads?: boolean;
  /** The TCP connection is up and the banner wait begins (sessions tell the two phases apart). */
  readonly onConnected?: () => void;
  /** Written first, as soon as the connection is up: a PROXY protocol header (servers[].sendProxy). Not counted in `sentBytes`. */
  readonly preamble?: Buffer;
  /** Connect from the client's own address (pools[].source: transparent, docs/identity.md). */
  readonly transparent?: { readonly sockets: TransparentSockets; readonly clientAddress: string };
}

export interface AttemptSuccess {
  readonly ok: true;
  /**
   * Paused, with no listeners of ours left but a placeholder 'error' listener; the caller owns it.
   * With `reuseReads` it has no read target either (bytes read meanwhile go to the next one).
   */
  readonly socket: Socket;
  /** Every byte received so far, in order: pre-lines, identification, and anything after it. */
  readonly received: Buffer;
  readonly identEndOffset: number;
  readonly identification: SshIdentification;
  readonly preLines: readonly string[];
  readonly connectMs: number;
  /** From TCP connect to the identification's line end. */
  readonly bannerMs: number;
  /** From the identification to the server's KEXINIT, when that was waited for (awaitServerKexInit). */
  readonly kexinitMs?: number;
  /** Removes the placeholder error listener once the caller has attached its own. */
  readonly releaseErrorGuard: () => void;
  /** Bytes of `sendOnConnect` the backend was sent (a session must not send them again). */
  readonly sentBytes: number;
}

export interface AttemptFailure {
  readonly ok: false;
  readonly code: AttemptFailureCode;
  readonly message: string;
  readonly connectMs: number | undefined;
  /** Time to the failure, from the start of the attempt. */
  readonly elapsedMs: number;
  readonly received: Buffer;
  readonly preLines: readonly string[];
  readonly protocol?: string;
  readonly notice?: string;
  readonly errno?: string;
  /** The proxy's own address and port on this connection (what sshd logs as `from A port P`), once connected. */
  readonly localAddress?: string;
  readonly localPort?: number;
  /** The address connected to (a host name's resolved address), once connected. */
  readonly remoteAddress?: string;
  /** The server's identification, when it failed after sending one (past the banner). */
  readonly identification?: string;
}

/** The optional facts of a failure, given where it is made. */
export type AttemptFailureDetail = Partial<Pick<AttemptFailure, 'protocol' | 'notice' | 'errno' | 'localAddress' | 'localPort' | 'remoteAddress'>>;

export type AttemptOutcome = AttemptSuccess | AttemptFailure;

export interface AttemptHandle {
  /** Abandons the attempt; the callback is not called afterwards. */
  cancel(): void;
}
