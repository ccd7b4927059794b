import { startSshd } from '../test/fixtures/sshd.js';
import { sshArgs } from '../test/fixtures/ssh-client.js';
const a = await startSshd({});
console.log(JSON.stringify(sshArgs({ host: '127.0.0.1', port: a.port, user: a.user, identityFile: a.identityFile, command: 'true' })));
await new Promise(r => setTimeout(r, 30000));
await a.stop();
