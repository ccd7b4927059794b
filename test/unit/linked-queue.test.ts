import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LinkedQueue } from '../../src/backend/linked-queue.js';

describe('LinkedQueue', () => {
  it('is FIFO, removes from the middle in O(1), and removing twice is a no-op', () => {
    const queue = new LinkedQueue<string>();
    const [a, b, c] = ['a', 'b', 'c'].map((value) => queue.push(value));
    assert.ok(a && b && c);
    assert.equal(queue.length, 3);
    assert.equal(queue.remove(b), true);
    assert.equal(queue.remove(b), false);
    assert.deepEqual([...queue.nodes()].map((node) => node.value), ['a', 'c']);
    assert.equal(queue.first?.value, 'a');
    queue.remove(a);
    queue.remove(c);
    assert.equal(queue.length, 0);
    assert.equal(queue.first, undefined);
  });

  it('a walk survives the visitor removing the visited node, the next one, or both', () => {
    const queue = new LinkedQueue<number>();
    const nodes = [1, 2, 3, 4, 5, 6].map((value) => queue.push(value));
    const seen: number[] = [];
    for (const node of queue.nodes()) {
      seen.push(node.value);
      if (node.value === 2) queue.remove(node);
      if (node.value === 3) {
        queue.remove(node);
        queue.remove(nodes[3] as (typeof nodes)[number]);
      }
    }
    assert.deepEqual(seen, [1, 2, 3, 1, 5, 6], 'after both left, the walk starts over from the head, never visiting a removed node');
    assert.deepEqual([...queue.nodes()].map((node) => node.value), [1, 5, 6]);
  });
});
