import type { AttemptFailureCode } from '../errors.js';
import { isTransientFailure } from './retry-policy.js';
import type { BackendServer } from './server.js';

/** sshd's PerSourcePenalties `min` and `max`: the first hold-out and the ceiling it doubles toward. */
const FIRST_HOLD_MS = 15_000;
const MAX_HOLD_MS = 600_000;
/** Refusals in a row, with few of the proxy's slots in use, before it is taken for a penalty... */
const REFUSALS_TO_SUSPECT = 3;
/**
 * ...spread over at least this long: a penalty refuses everything for 15 s and more, while
 * sshd's listener lagging behind connections that just closed refuses for milliseconds.
 */
const SUSPECT_SPAN_MS = 1000;

/**
 * Whether the proxy holds under half of its slots on `server` (not counting `held` of the
 * caller's own): a refusal then is not the proxy's own MaxStartups excess, but the server
 * refusing a source (the proxy's address here; a client's with source: transparent).
 */
export function fewProxySlotsInUse(server: BackendServer, held = 0): boolean {
  return server.handshakesActive - held < Math.max(1, Math.floor(server.maxStartups / 2));
}

export interface OwnPenaltyEpisode {
  readonly server: BackendServer;
  /** The proxy's address as the backend saw it (what to exempt), when known. */
  readonly proxyAddress: string | undefined;
  readonly holdMs: number;
  readonly refusals: number;
  /** Whether any refusal carried sshd's line ("Not allowed at this time"): only then is a penalty likely. */
  readonly withNotice: boolean;
}

export interface OwnPenaltyListener {
  started(episode: OwnPenaltyEpisode): void;
  extended(episode: OwnPenaltyEpisode): void;
  ended(server: BackendServer, refusals: number): void;
  /** A hold-out ran out: the server may be tried again. */
  holdEnded(): void;
}

interface Episode {
  holdMs: number;
  refusals: number;
  proxyAddress: string | undefined;
  withNotice: boolean;
}

/**
 * Recognises a backend that penalises the proxy's own address (sshd ≥ 9.8
 * PerSourcePenalties: every client behind the proxy shares it) and stops hammering it.
 * Refusals at sshd's listener (the "Not allowed at this time" line, a reset or a bare
 * close) while the proxy holds under half of its slots there are not MaxStartups of its
 * own making; three in a row, over a second or more, open an episode. The server is then held out for 15 s,
 * doubling toward sshd's 600 s on each refusal after a hold-out, and no client is sent
 * to it meanwhile. A successful attempt or check ends the episode.
 */
export class OwnPenaltyWatch {
  private readonly episodes = new Map<BackendServer, Episode>();
  private readonly streaks = new Map<BackendServer, { count: number; since: number; proxyAddress: string | undefined; withNotice: boolean }>();
  private readonly timers = new Map<BackendServer, NodeJS.Timeout>();
  private readonly listener: OwnPenaltyListener;
  private readonly now: () => number;

  constructor(listener: OwnPenaltyListener, now: () => number = () => performance.now()) {
    this.listener = listener;
    this.now = now;
  }

  /** Whether the server is held out now. */
  isHeldOut(server: BackendServer): boolean {
    return this.timers.has(server);
  }

  /** A session attempt or health check on `server` failed with `code`. */
  failed(server: BackendServer, code: AttemptFailureCode, proxyAddress: string | undefined): void {
    // The transient codes are exactly how sshd's listener drops a connection: the line, a
    // reset (the line lost) or a bare close.
    if (!isTransientFailure(code)) {
      this.streaks.delete(server);
      return;
    }
    const episode = this.episodes.get(server);
    if (episode) {
      episode.refusals += 1;
      episode.proxyAddress ??= proxyAddress;
      episode.withNotice ||= code === 'THROTTLED';
      // Attempts already under way when the hold-out began say nothing new.
      if (this.isHeldOut(server)) return;
      episode.holdMs = Math.min(episode.holdMs * 2, MAX_HOLD_MS);
      this.holdOut(server, episode);
      this.listener.extended({ server, ...episode });
      return;
    }
    // With half its own slots in use, a refusal may be the proxy's own MaxStartups excess.
    if (!fewProxySlotsInUse(server)) return;
    const now = this.now();
    const streak = this.streaks.get(server) ?? { count: 0, since: now, proxyAddress: undefined, withNotice: false };
    streak.count += 1;
    streak.proxyAddress = proxyAddress ?? streak.proxyAddress;
    streak.withNotice ||= code === 'THROTTLED';
    this.streaks.set(server, streak);
    if (streak.count < REFUSALS_TO_SUSPECT || now - streak.since < SUSPECT_SPAN_MS) return;
    this.streaks.delete(server);
    const started: Episode = { holdMs: FIRST_HOLD_MS, refusals: streak.count, proxyAddress: streak.proxyAddress, withNotice: streak.withNotice };
    this.episodes.set(server, started);
    this.holdOut(server, started);
    this.listener.started({ server, ...started });
  }

  /** A session attempt or health check on `server` got its banner. */
  succeeded(server: BackendServer): void {
    this.streaks.delete(server);
    const episode = this.episodes.get(server);
    if (!episode) return;
    this.episodes.delete(server);
    this.release(server);
    this.listener.ended(server, episode.refusals);
  }

  /** A server left the pool (reload). */
  forget(server: BackendServer): void {
    this.streaks.delete(server);
    this.episodes.delete(server);
    this.release(server);
  }

  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.episodes.clear();
    this.streaks.clear();
  }

  private holdOut(server: BackendServer, episode: Episode): void {
    this.release(server);
    const timer = setTimeout(() => {
      this.timers.delete(server);
      this.listener.holdEnded();
    }, episode.holdMs);
    this.timers.set(server, timer);
  }

  private release(server: BackendServer): void {
    clearTimeout(this.timers.get(server));
    this.timers.delete(server);
  }
}
