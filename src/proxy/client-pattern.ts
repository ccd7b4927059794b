/**
 * Client identification patterns (`listeners[].keepalive.clients`, `listeners[].deadlines[].clients`).
 *
 * A pattern is a glob (`*` any run of characters, `?` one character) matched against
 * the whole software version and comments of a client's identification line, i.e.
 * what follows `SSH-2.0-`: `paramiko_*` matches `SSH-2.0-paramiko_2.12.0`. A pattern
 * that itself starts with `SSH-` is matched against the whole line instead.
 */
export class ClientPatterns {
  private readonly matchers: readonly { readonly pattern: string; readonly regexp: RegExp; readonly wholeLine: boolean }[];

  constructor(patterns: readonly string[]) {
    this.matchers = patterns.map((pattern) => ({ pattern, regexp: globToRegExp(pattern), wholeLine: pattern.startsWith('SSH-') }));
  }

  /** The first pattern the identification matches, or undefined. */
  match(identification: string | undefined): string | undefined {
    if (identification === undefined) return undefined;
    const software = softwarePart(identification);
    for (const matcher of this.matchers) {
      if (matcher.regexp.test(matcher.wholeLine ? identification : software)) return matcher.pattern;
    }
    return undefined;
  }
}

/** `SSH-2.0-paramiko_2.12.0 comment` → `paramiko_2.12.0 comment`. */
export function softwarePart(identification: string): string {
  const match = /^SSH-[^-]*-(.*)$/.exec(identification);
  return match ? (match[1] as string) : identification;
}

export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const char of glob) {
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}
