import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `host:port`, `[v6]:port` or `v6-literal` forms used in config and CLI.
 * Returns an error message naming what was wrong instead of throwing.
 */
export function parseHostPort(text: string, defaultPort?: number): HostPort | string {
  const trimmed = text.trim();
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
    if (isIP(host) !== 6) return `"${text}": "${host}" in brackets is not an IPv6 address`;
  } else if (isIP(trimmed) === 6) {
    host = trimmed;
  } else {
    const colon = trimmed.lastIndexOf(':');
    if (colon === -1) {
      host = trimmed;
    } else {
      host = trimmed.slice(0, colon);
      portText = trimmed.slice(colon + 1);
    }
    if (host.includes(':')) return `"${text}": write IPv6 addresses as [address]:port`;
  }
  if (host === '') return `"${text}": missing host`;
  if (!isIP(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    return `"${text}": "${host}" is neither an IP address nor a host name`;
  }
  if (portText === undefined) {
    if (defaultPort === undefined) return `"${text}": missing port (expected host:port)`;
    return { host, port: defaultPort };
  }
  if (!/^\d+$/.test(portText)) return `"${text}": port "${portText}" is not a number`;
  const port = Number(portText);
  if (port > 65535) return `"${text}": port ${port} is above 65535`;
  return { host, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`, so IPv4 rules apply to IPv4 clients on dual-stack listeners. */
export function normaliseAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1];
  return address;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
