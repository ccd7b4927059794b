/**
 * Whether a client and a server can agree on a key exchange (RFC 4253 §7.1), read from
 * their two KEXINITs: for each category the client's first choice the server also
 * offers. Pure. The proxy fails over a backend with nothing in common with this client
 * (an OpenSSH 10 client and an old server without its post-quantum key exchange and
 * without its ciphers, say) before the client has seen a byte of it.
 */
import type { KexInit } from './kexinit.js';

/** Names that announce an extension, never chosen as a key exchange (RFC 8308, OpenSSH strict KEX). */
const KEX_PSEUDO_ALGORITHM = /^(ext-info-[cs]|kex-strict-[cs]-v00@openssh\.com)$/;

/** Ciphers with their own integrity tag: the MAC list is not consulted for them. */
const AEAD_CIPHERS: ReadonlySet<string> = new Set(['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com']);

const first = (client: readonly string[], server: readonly string[]): string | undefined => client.find((name) => server.includes(name));

/** What the two sides cannot agree on, as `kex`, `host key`, … (empty when a key exchange can go ahead). */
export function missingInCommon(client: KexInit, server: KexInit): string[] {
  const missing: string[] = [];
  const kexClient = client.kexAlgorithms.filter((name) => !KEX_PSEUDO_ALGORITHM.test(name));
  if (first(kexClient, server.kexAlgorithms) === undefined) missing.push('key exchange');
  if (first(client.serverHostKeyAlgorithms, server.serverHostKeyAlgorithms) === undefined) missing.push('host key');
  const directions = [
    ['client to server', client.ciphersClientToServer, server.ciphersClientToServer, client.macsClientToServer, server.macsClientToServer, client.compressionClientToServer, server.compressionClientToServer],
    ['server to client', client.ciphersServerToClient, server.ciphersServerToClient, client.macsServerToClient, server.macsServerToClient, client.compressionServerToClient, server.compressionServerToClient],
  ] as const;
  for (const [direction, clientCiphers, serverCiphers, clientMacs, serverMacs, clientCompression, serverCompression] of directions) {
    const cipher = first(clientCiphers, serverCiphers);
    if (cipher === undefined) missing.push(`cipher (${direction})`);
    else if (!AEAD_CIPHERS.has(cipher) && first(clientMacs, serverMacs) === undefined) missing.push(`MAC (${direction})`);
    if (first(clientCompression, serverCompression) === undefined) missing.push(`compression (${direction})`);
  }
  return missing;
}
