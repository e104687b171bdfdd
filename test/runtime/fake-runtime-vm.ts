/**
 * A stand-in VM for the runtime launcher's tests, started by the launcher like `hostlink vm` (engine address in
 * the environment, secret on stdin). argv[2]:
 *   silent       never calls Initialize (the handshake deadline must end it)
 *   version N    calls Initialize with protocol version N and a loopback address nobody serves, reports the
 *                outcome on stderr, exits 3 when refused
 *   env          writes the names of its environment variables (JSON) to stderr and exits
 */
import { initialize } from '../../src/runtime/grpc.js';
import { RUNTIME_ENGINE_ADDR_ENV } from '../../src/protocol/generated.js';

const [mode, arg] = process.argv.slice(2);
const engine = process.env[RUNTIME_ENGINE_ADDR_ENV] ?? '';
if (mode === 'silent') {
  setTimeout(() => undefined, 120_000);
} else if (mode === 'env') {
  process.stderr.write(`${JSON.stringify(Object.keys(process.env).sort())}\n`);
} else if (mode === 'version') {
  const outcome = await initialize(engine, { protocol_version: Number(arg), server_addr: '127.0.0.1:1' }, { deadlineMs: 5000 });
  process.stderr.write(`${JSON.stringify(outcome)}\n`);
  process.exitCode = outcome.ok ? 0 : 3;
} else {
  process.stderr.write(`unknown mode ${String(mode)}\n`);
  process.exitCode = 2;
}
