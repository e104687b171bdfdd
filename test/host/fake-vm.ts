/**
 * A misbehaving "VM" for supervisor tests, started by the host in place of `hostlink vm`:
 *   node fake-vm.js MODE --host ADDR [--message JSON]
 * MODE: exit-early (exit 3 before connecting), crash-after-hello (exit 7 mid-execution),
 *       garbage (send a malformed frame), oversize (announce a 1 GiB frame), silent (connect, never speak),
 *       effects-flood (a Return whose effects hold 5000 context_delete actions, over max_node_actions).
 */
import { connect } from 'node:net';
import { encodeFrame } from '../../src/protocol/frame.js';
import { emptyEffects, encodeEffects } from '../../src/protocol/effects.js';
import { encodeRequest } from '../../src/protocol/messages.js';
import { encodeResult } from '../../src/protocol/result.js';
import { parseAddress } from '../../src/transport/address.js';

const mode = process.argv[2];
const host = parseAddress(process.argv[process.argv.indexOf('--host') + 1]!);
if (mode === 'exit-early') process.exit(3);
const socket = host.kind === 'unix' ? connect(host.path) : connect(host.port, host.host);
socket.on('error', () => process.exit(9));
socket.on('connect', () => {
  const hello = encodeFrame(encodeRequest('hello', { minVersion: 1, maxVersion: 1, vmVersion: 'fake', pid: process.pid }));
  if (mode === 'crash-after-hello') {
    socket.write(hello);
    socket.once('data', () => process.exit(7));
  } else if (mode === 'garbage') {
    socket.write(hello);
    socket.once('data', () => socket.write(encodeFrame(Uint8Array.of(250, 1, 2, 3))));
    socket.on('close', () => process.exit(0));
  } else if (mode === 'oversize') {
    socket.write(hello);
    socket.once('data', () => socket.write(Buffer.from([0, 0, 0, 0x40, 5])));
    socket.on('close', () => process.exit(0));
  } else if (mode === 'effects-flood') {
    // A compromised VM: ignores the limits the real VM enforces and hands over a flood of node actions.
    const effects = emptyEffects();
    for (let i = 0; i < 5000; i++) effects.contextMutations.push({ kind: 'delete', contextId: new Uint8Array(32).fill(i % 251) });
    socket.write(hello);
    socket.once('data', () => {
      const request = encodeRequest('consume_result', { result: encodeResult({ code: 'return', value: null }), effects: encodeEffects(effects) });
      socket.write(encodeFrame(request));
    });
    socket.on('close', () => process.exit(0));
  } else if (mode === 'silent') {
    // Connected, never speaks: only the deadline can end this call.
    setInterval(() => undefined, 1000);
  }
});
