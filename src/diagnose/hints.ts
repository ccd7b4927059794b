/**
 * What to check for each verdict: the causes a troubleshooting guide names
 * (sshd-identification-errors, paramiko "Error reading SSH protocol banner").
 */
import { formatHostPort } from '../net/address.js';
import type { ProbeVerdict } from './verdicts.js';

export interface HintContext {
  readonly host: string;
  readonly port: number;
  readonly bannerMs?: number | undefined;
  readonly slowMs: number;
  readonly timeoutMs: number;
  readonly protocol?: string | undefined;
  readonly notice?: string | undefined;
  readonly errno?: string | undefined;
  readonly softwareVersion?: string | undefined;
  readonly preLineCount?: number | undefined;
  /** For not-ssh over http: the status the server answered with (400 from a proxy in HTTP mode). */
  readonly httpStatus?: number | undefined;
}

const MAXSTARTUPS =
  'sshd MaxStartups (default 10:30:100: beyond 10 unauthenticated connections sshd drops 30% of new ones, all beyond 100); ' +
  'raise it, e.g. "MaxStartups 100:30:200" in /etc/ssh/sshd_config, or open fewer connections at once';
const PENALTIES = 'OpenSSH 9.8+ PerSourcePenalties (a source that failed or crashed sessions is refused for a while; see "sshd -T | grep persource")';
const TCP_WRAPPERS = 'TCP wrappers: a rule in /etc/hosts.deny (e.g. "sshd: ALL") not overridden by /etc/hosts.allow';
const LOAD_BALANCER = 'a load balancer or proxy in front of sshd that is not in TCP mode (HAProxy "mode tcp") or whose backend is down';

export function hintFor(verdict: ProbeVerdict, context: HintContext): string {
  const where = formatHostPort(context);
  switch (verdict) {
    case 'ok': {
      const software = context.softwareVersion === undefined ? '' : ` (${context.softwareVersion})`;
      const preLines = context.preLineCount ? `; ${context.preLineCount} line(s) before the identification, which some clients reject` : '';
      return `SSH server${software} answered in ${formatMs(context.bannerMs)}${preLines}.`;
    }
    case 'slow-banner':
      return (
        `The identification took ${formatMs(context.bannerMs)} (over --slow ${context.slowMs} ms): clients with short banner timeouts ` +
        `(paramiko banner_timeout, 15 s by default) will fail. Check server load and ${MAXSTARTUPS}; ` +
        'reverse DNS ("UseDNS no") and GSSAPI ("GSSAPIAuthentication no") lookups in sshd_config.'
      );
    case 'refused':
      return `Nothing listens on ${where}: is sshd running ("systemctl status sshd")? Is it listening on another address or port ("ss -tlnp | grep sshd")?`;
    case 'connect-timeout':
      return `No TCP connection within ${context.timeoutMs} ms: a firewall dropping SYNs, the host down, or a wrong address.`;
    case 'connect-error':
      return `The TCP connect failed (${context.errno ?? 'error'}): no route to the host, a firewall rejecting, or a wrong address.`;
    case 'dns-error':
      return `The name "${context.host}" did not resolve (${context.errno ?? 'error'}): check the spelling and the resolver (/etc/resolv.conf, "getent hosts ${context.host}").`;
    case 'reset-before-banner':
    case 'closed-before-banner':
      return (
        `The server ${verdict === 'reset-before-banner' ? 'reset' : 'closed'} the connection before sending an identification. Causes: ` +
        `${TCP_WRAPPERS}; ${MAXSTARTUPS}; ${PENALTIES}; ${LOAD_BALANCER}; sshd unable to start its session (check its log).`
      );
    case 'throttled':
      return (
        `The server refused the connection with "${context.notice ?? 'Exceeded MaxStartups'}": too many unauthenticated connections, or a penalised source ` +
        `(sshd 9.8+ writes the same line for both). Check ${MAXSTARTUPS}; ${PENALTIES}. ` +
        'Run with --count 5 --concurrency 1: refused every time, one at a time, means a penalty; refused only with --concurrency 10, MaxStartups.'
      );
    case 'refused-repeatedly':
      return (
        `Refused even one at a time: penalties, or other clients holding MaxStartups; from outside the two look the same. Either ${PENALTIES}: ` +
        'this address (or its PerSourceNetBlockSize block) failed logins, left without logging in, or crashed sessions, and the penalty decays after up to PerSourcePenalties max (600 s by default); ' +
        'a proxy, bastion or NAT address must be exempted ("PerSourcePenaltyExemptList <its address>"; ssh-banner-proxy then applies penalties per client itself). ' +
        `Or other clients keep ${MAXSTARTUPS}. ` +
        'The server\'s log tells: "drop connection ... penalty: <kind>" for a penalty, "exceeded MaxStartups" for the other. ' +
        `A bare close or reset every time can also be ${TCP_WRAPPERS}.`
      );
    case 'banner-timeout':
      return (
        `Connected, but no complete identification line within ${context.timeoutMs} ms: an overloaded sshd (MaxStartups queue, ` +
        `slow "UseDNS"/"GSSAPIAuthentication" lookups), ${LOAD_BALANCER}, or a stateful firewall/conntrack table dropping the reply ("conntrack -L | grep :${context.port}").`
      );
    case 'not-ssh':
      if (context.protocol === 'http' && context.httpStatus === 400) {
        // What HAProxy (mode http), nginx (http) or a cloud L7 balancer answers to an SSH identification.
        return (
          `A load balancer or proxy in HTTP mode answers on ${where}: it read the SSH identification as an HTTP request and answered 400 Bad Request. ` +
          'SSH needs a TCP (layer 4) pass-through: HAProxy "mode tcp", an nginx "stream" block instead of "http", a network (L4) load balancer rather than an application (L7) one.'
        );
      }
      return `Another service answers on ${where}: it speaks ${context.protocol ?? 'another protocol'}, not SSH. Point the client at sshd's port ("ss -tlnp"), or fix the port forwarding.`;
    case 'ssh1-only':
      return 'The server speaks SSH protocol 1 only, which modern clients refuse: upgrade the server to an SSH-2 implementation.';
    case 'invalid-banner':
      return 'The identification violates RFC 4253 section 4.2 (over 255 bytes, a NUL byte, a bare CR, or too many lines before it); a broken server or something injecting text in front of it.';
    case 'fails-after-banner':
      return (
        'The server identified itself and then sent no key exchange (KEXINIT): garbage after the banner, or an sshd whose per-connection process dies after it (PAM or SELinux errors, ' +
        'no usable host key, a broken sshd-session/sshd-auth binary after an upgrade). Look at sshd\'s log on that host ("journalctl -u ssh") for the connection.'
      );
    case 'no-common-algorithms':
      return 'The server offers no key exchange, host key, cipher or MAC that the client accepts: align KexAlgorithms, HostKeyAlgorithms, Ciphers and MACs on one side.';
  }
}

function formatMs(ms: number | undefined): string {
  if (ms === undefined) return '?';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}
