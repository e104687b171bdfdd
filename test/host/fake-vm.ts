/**
 * A misbehaving "VM" for supervisor tests, started by the host in place of `hostlink vm`:
 *   node fake-vm.js MODE --host ADDR     (its secret arrives on stdin, as for the real VM)
 * It proves its secret like the real VM, so the host treats it as the VM it launched; then:
 * MODE: exit-early (exit 3 before connecting), crash-after-hello (exit 7 mid-execution),
 *       garbage (send a malformed frame), oversize (announce a 1 GiB frame), silent (connect, never speak),
 *       hello-only (say hello, never ask for work),
 *       flood (say hello, ask next_message, then pipeline storage_read requests without reading answers;
 *              prints `wrote N` on stderr each time its writes stall, or `done N` after FLOOD_BYTES),
 *       flood-KIND (takes a job, then sends one request after another, each after the previous answer, until the host
 *              ends the session or 1000 were answered; prints `answered N` on stderr and exits 0): KIND read is a
 *              storage_read of an empty key, keys a storage_read_many of MAX_BATCH_KEYS distinct keys, blob a
 *              blob_append of 1 MiB, code a get_code of the job's code, fetch an http_fetch (GET) of the URL given
 *              after the mode,
 *       read-many (say hello, ask next_message, then send one storage_read_many of FLOOD_KEYS copies of the
 *              key `big`; prints the response's status name on stderr, with the count of values when ok, and exits 0),
 *       lie-pid (claim pid 1 in hello, take a job with next_message, then exit 7 mid-execution),
 *       take-hold (take a job with next_message, then never answer: a guest that runs until its deadline),
 *       effects-flood (takes a job, then a Return whose effects hold 5000 context_delete actions, over max_node_actions),
 *       result-KIND (takes a job, then a Return with effects no honest VM sends for it, see forgedEffects: KIND is
 *              events-flood, events-over, log-long, xcall-params, gas-over, gas-huge, nondet-big, extra-key, or value-flood and underpaid: its return value),
 *       bad-proposal (takes a job, then a Return whose one proposal has the derived id and actions that do not decode),
 *       big-proposal (takes a job, then a Return whose one proposal is 10 MiB of SetContextValue actions with an empty
 *              key and value, 9 bytes each, paying handed_to_host for them: the test's gas limit allows it),
 *       forge-exit (says hello; when the host writes, writes the bytes of a remote worker's EXIT frame and exits 5),
 *       stubborn (takes a job, answers it with a malformed frame and ignores SIGTERM: the call ends at once as a
 *              protocol violation while the VM lives on until the host's SIGKILL, a whole kill grace later),
 *       blob-far (takes a job, writes the 3-byte blob `abc`, reads it at offsets an honest VM never sends (2^63,
 *              2^64 - 1, 2^63 - 2 with 1 MiB) and at 1, then returns what each read answered as the text
 *              `status:length` per read, space-separated),
 *       blobs-GAS (takes a job, writes three 1 KiB blobs, then returns with gas_used GAS: paid is exactly the round_trip
 *              gas an honest VM charges for the three requests and their answers, unpaid is 0),
 *       alias-KIND (takes a job, asks what no honest VM asks, then returns the `reserved` answers as text, e.g. `1 1`:
 *              KIND twice reserves one alias twice, long resolves an alias of 70,000 bytes, flood reserves 5 distinct
 *              aliases, one more than the test's max_node_actions).
 */
import { connect, type Socket } from 'node:net';
import { decodeCalldata, encodeCalldata, type CalldataMap, type CalldataValue } from '../../src/protocol/calldata.js';
import { emptyEffects, encodeEffects } from '../../src/protocol/effects.js';
import { encodeFrame, FrameReader } from '../../src/protocol/frame.js';
import { STATUS_CODES } from '../../src/protocol/generated.js';
import { helloProof } from '../../src/protocol/hello-proof.js';
import { decodeResponse, encodeRequest, MAX_BATCH_KEYS } from '../../src/protocol/messages.js';
import { DEFAULT_GAS_LIMIT, parseMessage } from '../../src/protocol/message.js';
import { proposalId } from '../../src/protocol/call-ids.js';
import { encodeResult } from '../../src/protocol/result.js';
import { parseAddress } from '../../src/transport/address.js';
import { HANDED_TO_HOST_GAS, ROUND_TRIP_GAS } from '../../src/vm/host-functions.generated.js';
import { readVmSecret } from '../../src/vm/secret.js';
import { encodeExit } from '../../src/worker/relay.js';

const mode = process.argv[2];
const host = parseAddress(process.argv[process.argv.indexOf('--host') + 1]!);
if (mode === 'exit-early') process.exit(3);
const secret = readVmSecret();
const FLOOD_BYTES = 256 * 1024 * 1024;
const FLOOD_KEYS = 4096;
/** no-read: requests sent without reading answers, each answered with a value of this size (set by the test). */
const NO_READ_REQUESTS = 256;
const NO_READ_VALUE_BYTES = 64 * 1024;

function signedHello(): Buffer {
  const fields = { minVersion: 1, maxVersion: 1, vmVersion: 'fake', pid: mode === 'lie-pid' ? 1 : process.pid, proof: new Uint8Array(32) };
  if (secret) fields.proof = helloProof(secret, encodeRequest('hello', fields));
  return encodeFrame(encodeRequest('hello', fields));
}

const socket = host.kind === 'unix' ? connect(host.path) : connect(host.port, host.host);
socket.on('error', () => process.exit(9));
socket.on('connect', () => {
  const hello = signedHello();
  if (mode === 'crash-after-hello') {
    socket.write(hello);
    socket.once('data', () => process.exit(7));
  } else if (mode === 'lie-pid') {
    socket.write(hello);
    socket.once('data', () => {
      socket.write(encodeFrame(encodeRequest('next_message', {})));
      socket.once('data', () => process.exit(7));
    });
  } else if (mode === 'take-hold') {
    socket.write(hello);
    socket.once('data', () => socket.write(encodeFrame(encodeRequest('next_message', {}))));
    setInterval(() => undefined, 1000);
    socket.on('close', () => process.exit(0));
  } else if (mode === 'garbage') {
    socket.write(hello);
    socket.once('data', () => socket.write(encodeFrame(Uint8Array.of(250, 1, 2, 3))));
    socket.on('close', () => process.exit(0));
  } else if (mode === 'oversize') {
    socket.write(hello);
    socket.once('data', () => socket.write(Buffer.from([0, 0, 0, 0x40, 5])));
    socket.on('close', () => process.exit(0));
  } else if (mode.startsWith('result-')) {
    socket.write(hello);
    socket.once('data', () => {
      socket.write(encodeFrame(encodeRequest('next_message', {})));
      socket.once('data', () => {
        const kind = mode.slice('result-'.length);
        // A return value of a million nulls: an honest VM returns one value (bytes or null).
        const result =
          kind === 'value-flood'
            ? Buffer.concat([encodeResult({ code: 'return', value: null }).subarray(0, 1), encodeCalldata(new Array<null>(1_000_000).fill(null))])
            : // A 1 MiB value with gas_used 0: an honest VM charges handed_to_host for every byte of it.
              encodeResult({ code: 'return', value: kind === 'underpaid' ? new Uint8Array(1 << 20) : null });
        socket.write(encodeFrame(encodeRequest('consume_result', { result, effects: forgedEffects(kind) })));
      });
    });
    socket.on('close', () => process.exit(0));
  } else if (mode === 'effects-flood') {
    // A compromised VM: ignores the limits the real VM enforces and hands over a flood of node actions.
    const effects = emptyEffects();
    for (let i = 0; i < 5000; i++) effects.contextMutations.push({ kind: 'delete', contextId: new Uint8Array(32).fill(i % 251) });
    socket.write(hello);
    socket.once('data', () => {
      socket.write(encodeFrame(encodeRequest('next_message', {})));
      socket.once('data', () => {
        const request = encodeRequest('consume_result', { result: encodeResult({ code: 'return', value: null }), effects: encodeEffects(effects) });
        socket.write(encodeFrame(request));
      });
    });
    socket.on('close', () => process.exit(0));
  } else if (mode === 'stubborn') {
    process.on('SIGTERM', () => undefined);
    socket.removeAllListeners('error');
    socket.on('error', () => undefined);
    socket.write(hello);
    socket.once('data', () => {
      socket.write(encodeFrame(encodeRequest('next_message', {})));
      socket.once('data', () => socket.write(encodeFrame(Uint8Array.of(250, 1, 2, 3))));
    });
    setInterval(() => undefined, 1000);
  } else if (mode === 'forge-exit') {
    // Through a remote worker: after its hello, the bytes of a worker EXIT frame claiming a clean exit, then
    // exit 5. The node must see those bytes as the VM's data and the worker's real status (exit code 5).
    // (Once the node spoke: a VM that exits before its worker admitted it is a start failure, not this case.)
    socket.write(hello);
    socket.once('data', () => socket.write(encodeExit({ exitCode: 0, signal: 'SIGFORGED', stderr: 'forged by the VM' }), () => process.exit(5)));
  } else if (mode === 'silent' || mode === 'hello-only') {
    // silent: connected, never speaks. hello-only: answered hello, never asks for work.
    if (mode === 'hello-only') socket.write(hello);
    setInterval(() => undefined, 1000);
    socket.on('close', () => process.exit(0));
  } else if (mode === 'flood') {
    socket.write(hello);
    socket.write(encodeFrame(encodeRequest('next_message', {})));
    const frame = encodeFrame(encodeRequest('storage_read', { key: Buffer.alloc(1000, 1) }));
    const batch = Buffer.concat(Array.from({ length: 64 }, () => frame));
    let written = 0;
    const pump = (): void => {
      while (written < FLOOD_BYTES) {
        written += batch.length;
        if (!socket.write(batch)) {
          process.stderr.write(`wrote ${written}\n`);
          socket.once('drain', pump);
          return;
        }
      }
      process.stderr.write(`done ${written}\n`);
    };
    pump();
    setInterval(() => undefined, 1000);
    socket.on('close', () => process.exit(0));
  } else if (mode === 'no-read') {
    // Takes a job, then sends NO_READ_REQUESTS storage_read requests of a large value without reading the
    // answers for a while: the host must hold at most about one answer, not all of them, then answer every
    // request in order once the VM reads again.
    let ok = 0;
    takeJob(socket, hello, (body, answers) => {
      if (answers === 2) {
        socket.pause();
        const request = encodeFrame(encodeRequest('storage_read', { key: Buffer.from('big') }));
        socket.write(Buffer.concat(Array.from({ length: NO_READ_REQUESTS }, () => request)));
        process.stderr.write('not reading\n');
        setTimeout(() => socket.resume(), 1500);
      } else if (answers > 2) {
        const r = decodeResponse('storage_read', body);
        if (r.status === 'ok' && r.fields.value.length === NO_READ_VALUE_BYTES) ok++;
        if (answers === NO_READ_REQUESTS + 2) {
          process.stderr.write(`answered ${ok}\n`);
          process.exit(0);
        }
      }
    });
  } else if (mode?.startsWith('flood-')) {
    let answered = 0;
    const keys = Array.from({ length: MAX_BATCH_KEYS }, (_, i) => Uint8Array.of(i & 0xff, i >> 8));
    const request: Record<string, (job: Buffer) => Uint8Array> = {
      'flood-read': () => encodeRequest('storage_read', { key: new Uint8Array(0) }),
      'flood-keys': () => encodeRequest('storage_read_many', { keys }),
      'flood-blob': () => encodeRequest('blob_append', { handle: 1n, data: new Uint8Array(1024 * 1024) }),
      'flood-code': (job) => encodeRequest('get_code', { codeHash: jobMessage(job).codeHash }),
      'flood-fetch': () => encodeRequest('http_fetch', { url: process.argv[3]!, method: 'GET', headers: [], body: new Uint8Array(0) }),
    };
    let read: Uint8Array | undefined;
    // The host ends the session with requests of ours unread: a reset, reported before the default's exit 9.
    const report = (): void => {
      process.stderr.write(`answered ${answered}\n`);
      process.exit(0);
    };
    takeJob(socket, hello, (body, answers) => {
      // Every answer but the host's last word (bad_request, as it ends the session).
      if (answers > 2 && body[0] !== STATUS_CODES.bad_request) answered++;
      if (answered === 1000) return report(); // a host that never cuts it off: enough to show it
      if (answers === 2) read = encodeFrame(request[mode]!(body));
      if (answers >= 2) socket.write(read!);
    });
    socket.prependListener('error', report);
    socket.on('close', report);
  } else if (mode === 'big-proposal') {
    takeJob(socket, hello, (body, answers) => {
      if (answers !== 2) return;
      const answer = decodeResponse('next_message', body);
      if (answer.status !== 'ok') process.exit(8);
      const count = Math.floor((10 * 1024 * 1024 - 4) / 9);
      const actions = Buffer.alloc(4 + 9 * count);
      actions.writeUInt32LE(count, 0);
      for (let at = 4; at < actions.length; at += 9) actions[at] = 4; // SetContextValue, then two empty vecs
      const e = emptyEffects();
      e.proposals.push({ id: proposalId(parseMessage(answer.fields.message), 0), actions });
      e.gasUsed = BigInt(HANDED_TO_HOST_GAS.perByte) * BigInt(32 + actions.length); // pays for the id and the actions
      socket.write(encodeFrame(encodeRequest('consume_result', { result: encodeResult({ code: 'return', value: null }), effects: encodeEffects(e) })));
    });
    socket.on('close', () => process.exit(0));
  } else if (mode === 'bad-proposal') {
    // Takes a job, then a Return with one proposal under the id the message derives but actions that are not a
    // Borsh Vec<ProposalAction> (the real VM refuses them with DeserializationError).
    takeJob(socket, hello, (body, answers) => {
      if (answers !== 2) return;
      const answer = decodeResponse('next_message', body);
      if (answer.status !== 'ok') process.exit(8);
      const e = emptyEffects();
      e.proposals.push({ id: proposalId(parseMessage(answer.fields.message), 0), actions: Uint8Array.of(1, 0, 0, 0, 9) });
      socket.write(encodeFrame(encodeRequest('consume_result', { result: encodeResult({ code: 'return', value: null }), effects: encodeEffects(e) })));
    });
    socket.on('close', () => process.exit(0));
  } else if (mode === 'blob-far') {
    const reads: [bigint, number][] = [[1n << 63n, 16], [(1n << 64n) - 1n, 16], [(1n << 63n) - 2n, 1 << 20], [1n, 16]];
    const seen: string[] = [];
    let blobId: Uint8Array | null = null;
    takeJob(socket, hello, (body, answers) => {
      if (answers < 2 || answers > 3 + reads.length) return; // hello's answer; the acknowledgement of the result
      if (answers === 2) {
        socket.write(encodeFrame(encodeRequest('blob_finish', { handle: 1n, data: Buffer.from('abc') })));
        return;
      }
      if (answers === 3) {
        const finished = decodeResponse('blob_finish', body);
        if (finished.status !== 'ok') process.exit(8);
        blobId = finished.fields.blobId;
      } else {
        const r = decodeResponse('blob_read', body);
        seen.push(`${r.status}:${r.status === 'ok' ? r.fields.data.length : '-'}`);
      }
      const next = reads[answers - 3];
      if (next !== undefined) {
        socket.write(encodeFrame(encodeRequest('blob_read', { blobId: blobId!, offset: next[0], length: next[1] })));
        return;
      }
      const e = emptyEffects();
      e.gasUsed = 100_000_000n; // pays round_trip for the requests above and handed_to_host for the few bytes returned
      const result = encodeResult({ code: 'return', value: Buffer.from(seen.join(' ')) });
      socket.write(encodeFrame(encodeRequest('consume_result', { result, effects: encodeEffects(e) })));
    });
    socket.on('close', () => process.exit(0));
  } else if (mode.startsWith('blobs-')) {
    const BLOBS = 3;
    let bytes = 0;
    takeJob(socket, hello, (body, answers) => {
      if (answers < 2 || answers > BLOBS + 2) return; // hello's answer; the acknowledgement of the result
      if (answers > 2) bytes += body.length;
      if (answers < BLOBS + 2) {
        const request = encodeRequest('blob_finish', { handle: BigInt(answers), data: Buffer.alloc(1024, answers) });
        bytes += request.length;
        socket.write(encodeFrame(request));
        return;
      }
      const e = emptyEffects();
      // What src/vm/metered-host.ts charges: the base per request, and per byte of each request and answer.
      if (mode === 'blobs-paid') e.gasUsed = BigInt(BLOBS) * BigInt(ROUND_TRIP_GAS.base) + BigInt(bytes) * BigInt(ROUND_TRIP_GAS.perByte);
      socket.write(encodeFrame(encodeRequest('consume_result', { result: encodeResult({ code: 'return', value: null }), effects: encodeEffects(e) })));
    });
    socket.on('close', () => process.exit(0));
  } else if (mode.startsWith('keys-')) {
    // One storage_read_many of as many tiny keys as a request may hold: about 2 us of the host's CPU per key.
    const keys = Array.from({ length: MAX_BATCH_KEYS }, (_, i) => Uint8Array.of(i & 0xff, i >> 8));
    let bytes = 0;
    takeJob(socket, hello, (body, answers) => {
      if (answers === 2) {
        const request = encodeRequest('storage_read_many', { keys });
        bytes += request.length;
        socket.write(encodeFrame(request));
      } else if (answers === 3) {
        bytes += body.length;
        const e = emptyEffects();
        // What src/vm/metered-host.ts charges for the request, and (paid) hostStorage's per_key for its keys.
        e.gasUsed = BigInt(ROUND_TRIP_GAS.base) + BigInt(bytes) * BigInt(ROUND_TRIP_GAS.perByte);
        if (mode === 'keys-paid') e.gasUsed += BigInt(keys.length) * BigInt(ROUND_TRIP_GAS.perKey);
        const result = encodeResult({ code: 'return', value: null });
        socket.write(encodeFrame(encodeRequest('consume_result', { result, effects: encodeEffects(e) })));
      }
    });
    socket.on('close', () => process.exit(0));
  } else if (mode.startsWith('alias-')) {
    const kind = mode.slice('alias-'.length);
    const reserve = (alias: string): Uint8Array => encodeRequest('context_reserve_alias', { alias });
    const requests =
      kind === 'twice'
        ? [reserve('twice'), reserve('twice')]
        : kind === 'long'
          ? [encodeRequest('context_resolve_alias', { alias: 'a'.repeat(70_000) })]
          : Array.from({ length: 5 }, (_, i) => reserve(`alias-${i}`));
    const reserved: number[] = [];
    takeJob(socket, hello, (body, answers) => {
      if (answers > 2 && answers <= requests.length + 2 && body[0] === 0 && body.length === 2) reserved.push(body[1]!);
      const next = requests[answers - 2];
      if (next !== undefined) {
        socket.write(encodeFrame(next));
      } else if (answers === requests.length + 2) {
        const e = emptyEffects();
        e.gasUsed = 100_000_000n; // pays round_trip for the requests above and handed_to_host for the few bytes returned
        const result = encodeResult({ code: 'return', value: Buffer.from(reserved.join(' ')) });
        socket.write(encodeFrame(encodeRequest('consume_result', { result, effects: encodeEffects(e) })));
      }
    });
    socket.on('close', () => process.exit(0));
  } else if (mode === 'read-many') {
    takeJob(socket, hello, (body, answers) => {
      if (answers === 2) {
        const key = Buffer.from('big');
        socket.write(encodeFrame(encodeRequest('storage_read_many', { keys: Array.from({ length: FLOOD_KEYS }, () => key) })));
      } else if (answers === 3) {
        const r = decodeResponse('storage_read_many', body);
        process.stderr.write(r.status === 'ok' ? `ok ${r.fields.values.length}\n` : `${r.status}\n`);
        process.exit(0);
      }
    });
  }
});

/**
 * Says hello, asks for a job, and hands every answer to `answer` with its number (1: hello's, 2: the job, then the
 * answers to what `answer` sends).
 */
/** The job in a next_message answer (exits 8 when there is none). */
function jobMessage(body: Buffer): ReturnType<typeof parseMessage> {
  const answer = decodeResponse('next_message', body);
  if (answer.status !== 'ok') process.exit(8);
  return parseMessage(answer.fields.message);
}

function takeJob(socket: Socket, hello: Uint8Array, answer: (body: Buffer, answers: number) => void): void {
  socket.write(hello);
  socket.write(encodeFrame(encodeRequest('next_message', {})));
  const reader = new FrameReader();
  let answers = 0;
  socket.on('data', (chunk: Buffer) => {
    for (const body of reader.push(chunk)) answer(body, ++answers);
  });
}

/**
 * Effects bytes a compromised VM might send (default limits): the events flood is assembled from one encoded
 * event repeated, as a VM would stream it, so the fake VM itself stays fast.
 */
function forgedEffects(kind: string): Uint8Array {
  const e = emptyEffects();
  const event = { kind: 'k', data: new Uint8Array(0), handler: null };
  switch (kind) {
    case 'events-flood': {
      // 300,000 empty events in one 5 MB frame: the old host decoded and applied them all.
      const one = encodeCalldata(new Map<string, CalldataValue>([['data', new Uint8Array(0)], ['handler', null], ['kind', '']]));
      const count = 300_000;
      const uleb = (n: number): number[] => {
        const out: number[] = [];
        do {
          const b = n % 128;
          n = Math.floor(n / 128);
          out.push(n > 0 ? b | 0x80 : b);
        } while (n > 0);
        return out;
      };
      const key = (k: string): Buffer => Buffer.concat([Buffer.from(uleb(k.length)), Buffer.from(k)]);
      const empty = encodeCalldata([]);
      return Buffer.concat([
        Buffer.from(uleb(5 * 8 + 6)), // a map of five entries, keys in order
        key('events'), Buffer.from(uleb(count * 8 + 5)), Buffer.alloc(count * one.length).fill(one),
        key('gas_used'), encodeCalldata(0n),
        key('logs'), empty, key('writes'), empty, key('xcalls'), empty,
      ]);
    }
    case 'value-flood':
    case 'underpaid':
      break;
    case 'extra-key': {
      // 1 MiB under a key no field reads, beside writes: it was accepted, outside max_effect_bytes and handed_to_host.
      e.writes.push([Buffer.from('forged'), Buffer.from('yes')]);
      const map = decodeCalldata(encodeEffects(e)) as CalldataMap;
      map.set('zzz', new Uint8Array(1 << 20));
      return encodeCalldata(map);
    }
    case 'nondet-big':
      // A block result of 2 KiB, run under max_effect_bytes 1024 (the test's limit).
      e.nondetResults.push(new Uint8Array(2048));
      break;
    case 'events-over':
      for (let i = 0; i < 101; i++) e.events.push(event);
      break;
    case 'log-long':
      e.logs.push('x'.repeat(16 * 1024 + 1));
      break;
    case 'xcall-params':
      e.xcalls.push({ contextId: new Uint8Array(32), function: 'f', params: new Uint8Array(16 * 1024 + 1) });
      break;
    case 'gas-over':
      e.gasUsed = DEFAULT_GAS_LIMIT + 1n;
      break;
    case 'gas-huge':
      e.gasUsed = 1n << 80_000n; // a 10 KiB integer
      break;
    default:
      throw new Error(`unknown forged result ${kind}`);
  }
  // Some writes too: whatever the verdict, none of them may reach the state.
  e.writes.push([Buffer.from('forged'), Buffer.from('yes')]);
  return encodeEffects(e);
}
