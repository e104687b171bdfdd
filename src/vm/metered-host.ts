/**
 * The host connection as a guest's execution sees it: every request the VM sends on the guest's behalf costs
 * gas (ROUND_TRIP_GAS, protocol/gas-costs.json), the base and the request's bytes before it is sent, the
 * answer's bytes after it arrives. A round trip is the dearest thing a host function does (tens of
 * microseconds against tens of nanoseconds for its own work), so it is priced where it happens rather than
 * guessed per function. Deterministic: which requests an execution sends depends only on what the guest did
 * (storage keys are fetched on their first use in the execution, never from a cache shared across calls),
 * and the sizes only on the request and the committed state it reads.
 */
import type { GasMeter } from './execution.js';
import { ROUND_TRIP_GAS } from './host-functions.generated.js';
import { HostClient } from './host-client.js';
import { requestInTurn, type HostChannel } from '../transport/channel.js';
import { HostlinkError } from '../errors.js';
import { unaffordableBytes } from '../protocol/messages.js';

const BASE = BigInt(ROUND_TRIP_GAS.base);
const PER_BYTE = BigInt(ROUND_TRIP_GAS.perByte);

/** A HostClient over the same channel that charges `meter` for every request and answer. */
export function meteredHost(host: HostClient, meter: GasMeter): HostClient {
  const channel = host.channel;
  const metered: HostChannel = {
    kind: channel.kind,
    request(body) {
      meter.charge(BASE + PER_BYTE * BigInt(body.length));
      const answer = channel.request(body);
      // An answer the call's gas cannot pay for is not sent, only its length: charged as if it had been read,
      // which runs out of gas, the same result as reading it.
      const unsent = unaffordableBytes(answer);
      meter.charge(PER_BYTE * BigInt(unsent ?? answer.length));
      if (unsent !== undefined) {
        throw new HostlinkError('protocol', `the host did not send an answer of ${unsent} bytes as unaffordable, but the gas left pays for it`);
      }
      return answer;
    },
    // A guest's requests go one at a time (each priced as it is sent); pairs are the VM loop's, never a guest's.
    requestPair(first, second, checkFirst) {
      return requestInTurn(metered, first, second, checkFirst);
    },
    close() {
      channel.close();
    },
  };
  return new HostClient(metered);
}
