import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { capConnections, FD_RESERVE, readFdLimit } from '../../src/net/fd-limit.js';

describe('descriptor limit', () => {
  it('reads the soft limit from a limits file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sbp-limits-'));
    const file = join(dir, 'limits');
    await writeFile(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n');
    assert.equal(readFdLimit(file), 1024);
    await writeFile(file, 'Max open files            unlimited            unlimited            files\n');
    assert.equal(readFdLimit(file), undefined);
    assert.equal(readFdLimit(join(dir, 'missing')), undefined);
  });

  it('reads this process limit on Linux', () => {
    const limit = readFdLimit();
    if (process.platform === 'linux') assert.ok(limit !== undefined && limit > 0);
  });

  it('caps connections at two descriptors each, keeping a reserve', () => {
    assert.deepEqual(capConnections(10000, 1024), { configured: 10000, effective: (1024 - FD_RESERVE) / 2, fdLimit: 1024 });
    assert.equal(capConnections(100, 1024).effective, 100);
    assert.equal(capConnections(100, undefined).effective, 100);
    assert.equal(capConnections(100, 10).effective, 1);
  });
});
