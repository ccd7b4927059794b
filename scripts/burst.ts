/**
 * `npm run burst`: the MaxStartups burst, direct vs through the proxy, side by side.
 *   npm run burst                 40 clients, 2 sshd at MaxStartups 4:50:8, hold 5 s
 *   npm run burst -- --big        also 200 clients against 2 sshd at the default 10:30:100
 *   npm run burst -- --clients 80 --max-startups 4:50:8 --hold 5 --grace 250ms
 */
import { parseArgs } from 'node:util';
import { formatBurstResult, runBurstScenario } from '../test/fixtures/clients/burst-scenario.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '40' },
    'max-startups': { type: 'string', default: '4:50:8' },
    hold: { type: 'string', default: '5' },
    'proxy-max-startups': { type: 'string' },
    grace: { type: 'string' },
    big: { type: 'boolean', default: false },
  },
});

const scenarios = [
  {
    sshdMaxStartups: values['max-startups'],
    clients: Number(values.clients),
    holdSec: Number(values.hold),
    directBoth: true,
    ...(values['proxy-max-startups'] === undefined ? {} : { proxyMaxStartups: Number(values['proxy-max-startups']) }),
    ...(values.grace === undefined ? {} : { grace: values.grace }),
  },
];
if (values.big) scenarios.push({ sshdMaxStartups: '10:30:100', clients: 200, holdSec: 5, directBoth: true });

for (const scenario of scenarios) {
  const result = await runBurstScenario({ ...scenario, timeoutMs: 180_000 });
  console.log(`${formatBurstResult(result)}\n`);
}
