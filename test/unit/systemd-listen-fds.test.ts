import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InheritedSockets } from '../../src/systemd/listen-fds.js';
import { sockaddrUn } from '../../src/systemd/unix-datagram.js';

const PID = 4242;
const from = (env: NodeJS.ProcessEnv, context: { pid: number; ppid?: number } = { pid: PID }): InheritedSockets => InheritedSockets.fromEnv(env, context);

test('named sockets go to the listeners of those names', () => {
  const sockets = from({ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'ssh:ssh6' });
  assert.deepEqual([...sockets.assign(['ssh6', 'ssh', 'other'])], [['ssh6', 4], ['ssh', 3]]);
});

test('variables for another process are ignored; a cluster worker accepts its parent\'s', () => {
  const env = { LISTEN_PID: '99', LISTEN_FDS: '1', LISTEN_FDNAMES: 'ssh' };
  assert.equal(from(env).count, 0);
  assert.deepEqual([...from(env, { pid: PID, ppid: 99 }).assign(['ssh'])], [['ssh', 3]]);
  assert.equal(from({}).count, 0);
});

test('one socket with systemd\'s default name goes to the only listener', () => {
  for (const name of ['unknown', 'ssh-banner-proxy.socket', undefined]) {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: String(PID), LISTEN_FDS: '1', ...(name === undefined ? {} : { LISTEN_FDNAMES: name }) };
    assert.deepEqual([...from(env).assign(['ssh'])], [['ssh', 3]], String(name));
  }
});

test('what cannot be matched is an error that says what to set', () => {
  assert.throws(() => from({ LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'sshd' }).assign(['ssh']), /named "sshd" but no listener has that name \(listeners: ssh\)/);
  assert.throws(() => from({ LISTEN_PID: String(PID), LISTEN_FDS: '2' }).assign(['a', 'b']), /2 socket\(s\) without a listener's name.*FileDescriptorName=/);
  assert.throws(() => from({ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'ssh' }), /names 1 socket\(s\) but LISTEN_FDS is 2/);
  assert.throws(() => from({ LISTEN_PID: String(PID), LISTEN_FDS: 'x' }), /LISTEN_FDS="x" is not a count/);
  assert.throws(() => from({ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'ssh:ssh' }), /names "ssh" twice/);
});

test('sockaddr_un: a path with its terminating NUL, an abstract name without', () => {
  const file = sockaddrUn('/run/systemd/notify');
  assert.equal(file.length, 2 + '/run/systemd/notify'.length + 1);
  assert.equal(file.address.readUInt16LE(0), 1);
  assert.equal(file.address.subarray(2, file.length - 1).toString(), '/run/systemd/notify');
  const abstract = sockaddrUn('@sbp/notify');
  assert.equal(abstract.length, 2 + 1 + 'sbp/notify'.length);
  assert.equal(abstract.address[2], 0);
  assert.throws(() => sockaddrUn(`/${'x'.repeat(107)}`), /longer than 107 bytes/);
  assert.throws(() => sockaddrUn('relative.sock'), /absolute or start with @/);
});
