/** A place in a `LinkedQueue`, kept by whoever queued it so it can leave in O(1). */
export interface QueueNode<T> {
  readonly value: T;
  /** @internal */ previous: QueueNode<T> | undefined;
  /** @internal */ next: QueueNode<T> | undefined;
  /** @internal */ queued: boolean;
}

/**
 * A FIFO that is O(1) at both ends and for removal from the middle (a cancelled or
 * timed-out waiter leaves at once). The pool serves it on every freed slot, so no
 * operation may walk it. undici's FixedQueue is O(1) too but cannot remove a
 * waiter from the middle; a doubly linked list can.
 */
export class LinkedQueue<T> {
  private head: QueueNode<T> | undefined;
  private tail: QueueNode<T> | undefined;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(value: T): QueueNode<T> {
    const node: QueueNode<T> = { value, previous: this.tail, next: undefined, queued: true };
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.count += 1;
    return node;
  }

  /** The oldest node, if any. */
  get first(): QueueNode<T> | undefined {
    return this.head;
  }

  /** Removes the node if it is still queued; returns whether it was. */
  remove(node: QueueNode<T>): boolean {
    if (!node.queued) return false;
    node.queued = false;
    if (node.previous) node.previous.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.previous = node.previous;
    else this.tail = node.previous;
    node.previous = undefined;
    node.next = undefined;
    this.count -= 1;
    return true;
  }

  /**
   * Oldest first. The visitor may remove any node: the walk goes on from the visited
   * node's successor, or starts again from the head if that one left too.
   */
  *nodes(): Generator<QueueNode<T>> {
    let node = this.head;
    while (node) {
      const next = node.next;
      yield node;
      if (node.queued) node = node.next;
      else node = next?.queued === true ? next : this.head;
    }
  }
}
