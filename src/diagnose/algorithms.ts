/**
 * The algorithms a server offers in its KEXINIT, with the weak ones flagged.
 */
import type { KexInit } from '../protocol/kexinit.js';

export interface OfferedAlgorithms {
  readonly kex: readonly string[];
  readonly hostKey: readonly string[];
  readonly ciphers: readonly string[];
  readonly macs: readonly string[];
  readonly compression: readonly string[];
}

export interface WeakAlgorithm {
  readonly category: keyof OfferedAlgorithms;
  readonly name: string;
  readonly why: string;
}

export interface AlgorithmReport {
  readonly offered: OfferedAlgorithms;
  readonly weak: readonly WeakAlgorithm[];
}

type Rule = readonly [RegExp, string];

const WEAK_RULES: { readonly [K in keyof OfferedAlgorithms]: readonly Rule[] } = {
  kex: [
    [/^diffie-hellman-group1-sha1$/, '1024-bit group and SHA-1 (Logjam)'],
    [/^diffie-hellman-group14-sha1$/, 'SHA-1'],
    [/^diffie-hellman-group-exchange-sha1$/, 'SHA-1'],
    [/^gss-.*-sha1-/, 'SHA-1'],
    [/^rsa1024-sha1$/, '1024-bit RSA and SHA-1'],
  ],
  hostKey: [
    [/^ssh-rsa$/, 'RSA signatures with SHA-1'],
    [/^ssh-dss$/, 'DSA (1024-bit, SHA-1)'],
    [/^ssh-rsa-cert-v01@openssh\.com$/, 'RSA signatures with SHA-1'],
    [/^ssh-dss-cert-v01@openssh\.com$/, 'DSA (1024-bit, SHA-1)'],
  ],
  ciphers: [
    [/^3des-cbc$/, '64-bit block cipher (Sweet32)'],
    [/^blowfish-cbc$|^cast128-cbc$|^idea-cbc$/, '64-bit block cipher (Sweet32)'],
    [/^des-cbc|^des$/, 'single DES'],
    [/^arcfour/, 'RC4'],
    [/^none$/, 'no encryption'],
    [/-cbc$|^rijndael-cbc@lysator\.liu\.se$/, 'CBC mode (plaintext recovery attacks)'],
  ],
  macs: [
    [/^hmac-md5/, 'MD5'],
    [/^hmac-sha1-96/, 'SHA-1 truncated to 96 bits'],
    [/^hmac-sha1(-etm@openssh\.com)?$/, 'SHA-1'],
    [/^umac-64(-etm)?@openssh\.com$/, '64-bit tag'],
    [/^hmac-ripemd160/, 'RIPEMD-160 (deprecated)'],
    [/^none$/, 'no integrity'],
  ],
  compression: [],
};

function weakReason(category: keyof OfferedAlgorithms, name: string): string | undefined {
  for (const [pattern, why] of WEAK_RULES[category]) if (pattern.test(name)) return why;
  return undefined;
}

function union(a: readonly string[], b: readonly string[]): readonly string[] {
  return [...new Set([...a, ...b])];
}

export function reportAlgorithms(kexinit: KexInit): AlgorithmReport {
  const offered: OfferedAlgorithms = {
    // Pseudo-algorithms (ext-info-s, kex-strict-s-v00@openssh.com) are signals, not key exchanges.
    kex: kexinit.kexAlgorithms,
    hostKey: kexinit.serverHostKeyAlgorithms,
    ciphers: union(kexinit.ciphersServerToClient, kexinit.ciphersClientToServer),
    macs: union(kexinit.macsServerToClient, kexinit.macsClientToServer),
    compression: union(kexinit.compressionServerToClient, kexinit.compressionClientToServer),
  };
  const weak: WeakAlgorithm[] = [];
  for (const category of Object.keys(offered) as (keyof OfferedAlgorithms)[]) {
    for (const name of offered[category]) {
      const why = weakReason(category, name);
      if (why !== undefined) weak.push({ category, name, why });
    }
  }
  return { offered, weak };
}
