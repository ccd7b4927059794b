/**
 * What USERAUTH_SUCCESS looks like from one backend when it shares a read with the packet
 * sshd sends next. After a login, sshd's post-authentication process at once sends its
 * host keys (the `hostkeys-00@openssh.com` global request), whose size is fixed for a
 * server and its negotiated algorithms. Under load the proxy may read both in one chunk:
 * smallest + that size. Learnt from sessions where the two arrived apart; bounded.
 */
export class SuccessShapes {
  /** smallest packet size → flight sizes that are SUCCESS plus the host-key announcement. */
  private readonly coalesced = new Map<number, Set<number>>();
  private static readonly PER_SIZE = 4;
  private static readonly SIZES = 16;

  /** Whether a server flight of `bytes` is SUCCESS followed by a packet learnt earlier. */
  isCoalescedSuccess(smallest: number, bytes: number): boolean {
    return this.coalesced.get(smallest)?.has(bytes) === true;
  }

  /** The first server chunk after a SUCCESS that arrived alone: remember SUCCESS + it. */
  learn(smallest: number, nextChunkBytes: number): void {
    let sizes = this.coalesced.get(smallest);
    if (!sizes) {
      if (this.coalesced.size >= SuccessShapes.SIZES) return;
      sizes = new Set();
      this.coalesced.set(smallest, sizes);
    }
    if (sizes.size < SuccessShapes.PER_SIZE) sizes.add(smallest + nextChunkBytes);
  }
}
