/**
 * Sockets handed over by systemd socket activation (sd_listen_fds(3)): descriptors
 * 3 … 3+LISTEN_FDS-1, named by LISTEN_FDNAMES (the socket unit's FileDescriptorName=).
 * A listener takes the socket that bears its name; a lone unnamed socket goes to a
 * lone listener. Pure: fed the environment and the process ids, it touches no descriptor.
 */

/** sd_listen_fds' SD_LISTEN_FDS_START. */
const FIRST_FD = 3;

export interface ListenFdsContext {
  readonly pid: number;
  /** A cluster worker asks the primary for the socket; it checks LISTEN_PID against its parent. */
  readonly ppid?: number;
}

export class InheritedSockets {
  /** Descriptor per name, in the order systemd passed them. */
  private readonly byName: ReadonlyMap<string, number>;
  private readonly unnamed: readonly number[];

  private constructor(byName: ReadonlyMap<string, number>, unnamed: readonly number[]) {
    this.byName = byName;
    this.unnamed = unnamed;
  }

  static none(): InheritedSockets {
    return new InheritedSockets(new Map(), []);
  }

  /**
   * Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES. Variables meant for another
   * process (LISTEN_PID not ours) are ignored, as sd_listen_fds does. A malformed
   * set is an error that says which variable is wrong.
   */
  static fromEnv(env: NodeJS.ProcessEnv, context: ListenFdsContext): InheritedSockets {
    const pidText = env.LISTEN_PID;
    const countText = env.LISTEN_FDS;
    if (pidText === undefined || countText === undefined) return InheritedSockets.none();
    const pid = Number(pidText);
    if (pid !== context.pid && pid !== context.ppid) return InheritedSockets.none();
    const count = Number(countText);
    if (!Number.isInteger(count) || count < 0 || count > 1000) throw new Error(`LISTEN_FDS="${countText}" is not a count of descriptors`);
    const names = env.LISTEN_FDNAMES === undefined || env.LISTEN_FDNAMES === '' ? [] : env.LISTEN_FDNAMES.split(':');
    if (names.length > 0 && names.length !== count) throw new Error(`LISTEN_FDNAMES names ${names.length} socket(s) but LISTEN_FDS is ${count}`);
    const byName = new Map<string, number>();
    const unnamed: number[] = [];
    for (let index = 0; index < count; index += 1) {
      const name = names[index];
      const fd = FIRST_FD + index;
      // systemd's default name is "unknown" (or the unit's name): no listener is called that on purpose.
      if (name === undefined || isDefaultName(name)) unnamed.push(fd);
      else if (byName.has(name)) throw new Error(`LISTEN_FDNAMES names "${name}" twice: one listener takes one socket (give each ListenStream= its own socket unit or FileDescriptorName=)`);
      else byName.set(name, fd);
    }
    return new InheritedSockets(byName, unnamed);
  }

  get count(): number {
    return this.byName.size + this.unnamed.length;
  }

  /**
   * Which descriptor each listener takes, or an error naming what does not fit: a named
   * socket no listener wants (it would sit there accepting into a queue nobody reads),
   * or unnamed sockets that cannot be told apart.
   */
  assign(listenerNames: readonly string[]): ReadonlyMap<string, number> {
    const assigned = new Map<string, number>();
    for (const name of listenerNames) {
      const fd = this.byName.get(name);
      if (fd !== undefined) assigned.set(name, fd);
    }
    const unused = [...this.byName.keys()].filter((name) => !assigned.has(name));
    if (unused.length > 0) {
      throw new Error(`systemd passed socket(s) named ${unused.map((name) => `"${name}"`).join(', ')} but no listener has that name (listeners: ${listenerNames.join(', ')}); set FileDescriptorName= to a listener's name`);
    }
    if (this.unnamed.length === 0) return assigned;
    const [lone] = this.unnamed;
    const waiting = listenerNames.filter((name) => !assigned.has(name));
    if (this.unnamed.length === 1 && lone !== undefined && waiting.length === 1 && waiting[0] !== undefined) {
      assigned.set(waiting[0], lone);
      return assigned;
    }
    throw new Error(
      `systemd passed ${this.unnamed.length} socket(s) without a listener's name, and ${waiting.length} listener(s) (${waiting.join(', ') || 'none'}) could take them; ` +
        'set FileDescriptorName= in the .socket unit to the listener\'s name',
    );
  }
}

function isDefaultName(name: string): boolean {
  return name === 'unknown' || name === 'stored' || name.endsWith('.socket');
}
