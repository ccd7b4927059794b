/**
 * Incremental parser for the SSH identification exchange (RFC 4253 section 4.2).
 * Pure: fed bytes, returns a verdict; never touches a socket.
 */

export const IDENT_MAX_BYTES = 255; // including CR LF (RFC 4253 4.2)

export interface IdentLimits {
  /** Lines a server may send before its identification. */
  readonly maxPreLines: number;
  /** Bytes of all pre-identification lines together. */
  readonly maxPreBytes: number;
}

export const DEFAULT_IDENT_LIMITS: IdentLimits = { maxPreLines: 32, maxPreBytes: 8192 };

export interface SshIdentification {
  /** The identification line without its line ending. */
  readonly line: string;
  readonly protoVersion: string;
  readonly softwareVersion: string;
  readonly comments: string | undefined;
  /** Bare LF endings are accepted (OpenSSH and paramiko accept them) but reported. */
  readonly lineEnding: 'crlf' | 'lf';
}

export type IdentErrorCode = 'BANNER_INVALID' | 'NOT_SSH' | 'THROTTLED' | 'SSH_VERSION_UNSUPPORTED';

export type IdentResult =
  | { readonly state: 'incomplete' }
  | {
      readonly state: 'identified';
      readonly identification: SshIdentification;
      readonly preLines: readonly string[];
      /** Bytes up to and including the identification's line end; anything after belongs to the binary protocol. */
      readonly identEndOffset: number;
    }
  | {
      readonly state: 'rejected';
      readonly code: IdentErrorCode;
      readonly message: string;
      /** For NOT_SSH: the protocol recognised (http, tls, smtp, ftp, ...). */
      readonly protocol?: string;
      /** For THROTTLED: the notice line the server sent. */
      readonly notice?: string;
      readonly preLines: readonly string[];
    };

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;
const SSH_PREFIX = Buffer.from('SSH-');
const IDENT_PATTERN = /^SSH-([^-\s]+)-([^\s]+)(?: (.*))?$/;

/** Notices sshd writes before closing a connection it will not serve. */
const THROTTLE_NOTICES: readonly RegExp[] = [/^Exceeded MaxStartups\b/i, /^Not allowed at this time\b/i];

export class IdentParser {
  private readonly limits: IdentLimits;
  private readonly lineBytes: number[] = [];
  private readonly preLines: string[] = [];
  private preBytes = 0;
  private consumed = 0;
  private sawCr = false;
  private result: IdentResult = { state: 'incomplete' };

  constructor(limits: IdentLimits = DEFAULT_IDENT_LIMITS) {
    this.limits = limits;
  }

  get done(): boolean {
    return this.result.state !== 'incomplete';
  }

  /** Feeds received bytes. Once a final result is returned, further calls return it unchanged. */
  push(chunk: Uint8Array): IdentResult {
    for (let index = 0; index < chunk.length && this.result.state === 'incomplete'; index += 1) {
      this.result = this.pushByte(chunk[index] as number);
    }
    return this.result;
  }

  /**
   * The stream ended (FIN or reset) before an identification. Returns a rejection when the
   * bytes seen explain why (a throttle notice without line end, another protocol), else incomplete.
   */
  end(): IdentResult {
    if (this.result.state !== 'incomplete') return this.result;
    const partial = Buffer.from(this.lineBytes).toString('latin1');
    const notice = THROTTLE_NOTICES.some((pattern) => pattern.test(partial));
    if (notice) return this.reject('THROTTLED', `server sent "${partial}" and closed`, { notice: partial });
    const protocol = recogniseForeignProtocol(Buffer.from(this.lineBytes), true);
    if (protocol) return this.reject('NOT_SSH', `server speaks ${protocol}, not SSH`, { protocol });
    return this.result;
  }

  /** Lines received before the identification (for diagnostics). */
  get linesBeforeIdent(): readonly string[] {
    return this.preLines;
  }

  private pushByte(byte: number): IdentResult {
    this.consumed += 1;
    if (this.sawCr && byte !== LF) {
      return this.reject('BANNER_INVALID', 'carriage return not followed by line feed before the identification');
    }
    if (byte === CR) {
      this.sawCr = true;
      return this.checkLineSoFar();
    }
    if (byte === LF) return this.completeLine();
    if (byte === NUL) {
      const what = this.lineStartsWithSsh() ? 'identification line' : 'line before the identification';
      return this.reject('BANNER_INVALID', `NUL byte in the ${what}`);
    }
    this.lineBytes.push(byte);
    return this.checkLineSoFar();
  }

  /** Rejects as early as the bytes allow, so a wrong service never costs a full banner timeout. */
  private checkLineSoFar(): IdentResult {
    const length = this.lineBytes.length + (this.sawCr ? 1 : 0);
    if (this.preLines.length === 0 && this.lineBytes.length <= 8) {
      const protocol = recogniseForeignProtocol(Buffer.from(this.lineBytes), false);
      if (protocol) return this.reject('NOT_SSH', `server speaks ${protocol}, not SSH`, { protocol });
    }
    if (this.lineStartsWithSsh()) {
      if (length + 1 > IDENT_MAX_BYTES) {
        return this.reject('BANNER_INVALID', `identification line longer than ${IDENT_MAX_BYTES} bytes including CR LF`);
      }
    } else if (this.preBytes + length > this.limits.maxPreBytes) {
      return this.reject('BANNER_INVALID', `more than ${this.limits.maxPreBytes} bytes before the identification line`);
    }
    return this.result;
  }

  private completeLine(): IdentResult {
    const lineEnding = this.sawCr ? 'crlf' : 'lf';
    const text = Buffer.from(this.lineBytes).toString('latin1');
    const lineLength = this.lineBytes.length + (this.sawCr ? 2 : 1);
    this.lineBytes.length = 0;
    this.sawCr = false;
    if (text.startsWith('SSH-')) return this.completeIdentification(text, lineEnding);

    if (THROTTLE_NOTICES.some((pattern) => pattern.test(text))) {
      return this.reject('THROTTLED', `server sent "${text}" instead of an identification`, { notice: text });
    }
    if (this.preLines.length === 0) {
      const protocol = recogniseForeignProtocol(Buffer.from(text, 'latin1'), true);
      if (protocol) return this.reject('NOT_SSH', `server speaks ${protocol}, not SSH: "${truncate(text)}"`, { protocol });
    }
    if (hasControlBytes(text)) {
      return this.reject('NOT_SSH', 'server sent binary data instead of an identification', { protocol: 'binary' });
    }
    this.preLines.push(text);
    this.preBytes += lineLength;
    if (this.preLines.length > this.limits.maxPreLines) {
      return this.reject('BANNER_INVALID', `more than ${this.limits.maxPreLines} lines before the identification`);
    }
    return this.result;
  }

  private completeIdentification(text: string, lineEnding: 'crlf' | 'lf'): IdentResult {
    const match = IDENT_PATTERN.exec(text);
    if (!match) return this.reject('BANNER_INVALID', `malformed identification "${truncate(text)}"`);
    const protoVersion = match[1] as string;
    if (protoVersion !== '2.0' && protoVersion !== '1.99') {
      const message = protoVersion.startsWith('1.')
        ? `server speaks SSH protocol ${protoVersion} only ("${truncate(text)}"); SSH-2.0 is required`
        : `unsupported SSH protocol version ${protoVersion} ("${truncate(text)}")`;
      return this.reject('SSH_VERSION_UNSUPPORTED', message);
    }
    const identification: SshIdentification = {
      line: text,
      protoVersion,
      softwareVersion: match[2] as string,
      comments: match[3],
      lineEnding,
    };
    return { state: 'identified', identification, preLines: [...this.preLines], identEndOffset: this.consumed };
  }

  private lineStartsWithSsh(): boolean {
    const bytes = this.lineBytes;
    const checked = Math.min(bytes.length, SSH_PREFIX.length);
    if (checked < SSH_PREFIX.length) return false;
    for (let index = 0; index < checked; index += 1) if (bytes[index] !== SSH_PREFIX[index]) return false;
    return true;
  }

  private reject(code: IdentErrorCode, message: string, extra: { protocol?: string; notice?: string } = {}): IdentResult {
    return { state: 'rejected', code, message, preLines: [...this.preLines], ...extra };
  }
}

/** Control characters other than tab: a text line before the identification never has them. */
function hasControlBytes(text: string): boolean {
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

function truncate(text: string, max = 80): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '.');
  return printable.length > max ? `${printable.slice(0, max)}...` : printable;
}

/**
 * Names the protocol a non-SSH server speaks from the first bytes of its first line.
 * `complete` is true when the whole first line (or the whole stream) is known.
 */
export function recogniseForeignProtocol(bytes: Uint8Array, complete: boolean): string | undefined {
  if (bytes.length === 0) return undefined;
  const first = bytes[0] as number;
  // TLS record: handshake (0x16) or alert (0x15) with major version 3.
  if (first === 0x16 || first === 0x15) {
    if (bytes.length < 2) return complete ? 'tls' : undefined;
    if (bytes[1] === 0x03) return 'tls';
  }
  const text = Buffer.from(bytes).toString('latin1');
  if (text.startsWith('HTTP/')) return 'http';
  if (/^<(!doctype|html)/i.test(text)) return 'http';
  if (text.startsWith('RFB ')) return 'vnc';
  if (text.startsWith('+OK')) return 'pop3';
  if (text.startsWith('* OK')) return 'imap';
  if (text.startsWith('-ERR') || text.startsWith('+PONG')) return 'redis';
  if (bytes.length >= 5 && bytes[3] === 0x00 && bytes[4] === 0x0a) return 'mysql';
  if (/^220[ -]/.test(text)) {
    if (!complete) return undefined; // wait for the line to tell SMTP from FTP
    if (/ftp/i.test(text)) return 'ftp';
    if (/smtp|mail|postfix|exim|sendmail/i.test(text)) return 'smtp';
    return 'smtp-or-ftp';
  }
  // Binary (non-text) first byte that could never start an SSH line.
  if (first < 0x09 || (first > 0x0d && first < 0x20) || first >= 0x7f) return 'binary';
  return undefined;
}

/**
 * A client's identification line as logs and client patterns may see it: at most
 * IDENT_MAX_BYTES of the line (RFC 4253's limit; a longer line is cut, never kept
 * whole), CR dropped, anything unprintable as `?`; undefined when it is not `SSH-…`.
 * `line`: the bytes before the LF (or the first IDENT_MAX_BYTES when none came).
 */
export function clientIdentificationText(line: Uint8Array): string | undefined {
  const capped = Buffer.from(line.buffer, line.byteOffset, Math.min(line.length, IDENT_MAX_BYTES)).toString('latin1').replace(/\r$/, '');
  return capped.startsWith('SSH-') ? capped.replace(/[^\x20-\x7e]/g, '?') : undefined;
}
