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

/**
 * Where a sub-instance's round-trip gas goes when its share cannot pay it: its meter's limit (the share), and
 * the caller that pays the rest (spawnSubInstance). The host books an answer's bytes against the call's gas,
 * which the share does not bound, so an answer the share cannot pay for is still the call's to pay: charged to
 * the share alone, the call reported less than the host's account and an honest VM was judged compromised.
 */
export interface RoundTripDebt {
  readonly limit: bigint;
  owe(gas: bigint): void;
}

/**
 * Charges `amount` of round-trip gas to `meter`; with a `debt`, what its limit leaves unpaid is owed to the caller
 * first. Throws OutOfGas when the meter cannot pay it all, as `meter.charge` does.
 */
export function chargeRoundTrip(meter: GasMeter, amount: bigint, debt: RoundTripDebt | undefined): void {
  if (debt !== undefined) {
    const left = debt.limit - meter.gasUsed();
    if (amount > left) debt.owe(amount - (left > 0n ? left : 0n));
  }
  meter.charge(amount);
}

/**
 * A HostClient over the same channel that charges `meter` for every request and answer. A sub-instance's
 * `debt` takes the answers' bytes its share cannot pay (a request it cannot pay is never sent, so it owes none).
 */
export function meteredHost(host: HostClient, meter: GasMeter, debt?: RoundTripDebt): HostClient {
  const channel = host.channel;
  const metered: HostChannel = {
    kind: channel.kind,
    request(body) {
      meter.charge(BASE + PER_BYTE * BigInt(body.length));
      const answer = channel.request(body);
      // An answer the call's gas cannot pay for is not sent, only its length: charged as if it had been read,
      // which runs out of gas, the same result as reading it.
      const unsent = unaffordableBytes(answer);
      chargeRoundTrip(meter, PER_BYTE * BigInt(unsent ?? answer.length), debt);
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
