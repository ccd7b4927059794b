import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noauthOverBudget } from '../../src/config/noauth-budget.js';
import { configSchema } from '../../src/config/schema.js';

function config(pool: Record<string, unknown>, workers: number | 'auto' = 1) {
  return configSchema.parse({ listeners: [{ name: 'l', bind: '127.0.0.1:1', pool: 'p' }], pools: [{ name: 'p', servers: [{ name: 's', address: '127.0.0.1:22' }], ...pool }], workers });
}

test('noauth budget: defaults stay well under 1/s per backend; frequent checks or a short prefetch maxAge do not', () => {
  assert.deepEqual(noauthOverBudget(config({})), [], 'checks every 5 s: 0.2/s');
  const checks = noauthOverBudget(config({ healthCheck: { interval: '500ms' } }));
  assert.equal(checks[0]?.checksPerSecond, 2);
  const prefetch = noauthOverBudget(config({ healthCheck: { enabled: false }, prefetch: { perServer: 2, maxAge: '2s' } }, 2));
  assert.equal(prefetch[0]?.prefetchPerSecond, 2, 'two per server, per worker, retired every 2 s');
  assert.deepEqual(noauthOverBudget(config({ healthCheck: { enabled: false }, prefetch: { perServer: 2, maxAge: '60s' } })), []);
});
