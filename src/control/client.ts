/**
 * The guest side: sends commands to the host agent. Like the reference guest, it first asks the host for its
 * protocol version and falls back to the legacy string format when the host is a v0 one.
 */
import { HostlinkError } from '../errors.js';
import { formatControlAddress, type ControlAddress } from './address.js';
import { exchange, ExchangeError, type ExchangeOptions } from './dial.js';
import {
  decodeLegacyResponse,
  decodeResponse,
  encodeLegacyRequest,
  encodeRequest,
  formatVersion,
  LEGACY_HOSTOS_VERSION,
  VSOCK_PROTOCOL_VERSION,
  WireError,
  type Command,
  type ProtocolVersion,
  type RequestFormat,
  type Response,
} from './wire.js';

/** The CID a guest claims when none is given: the first guest VM, the only one the reference host accepts. */
export const DEFAULT_GUEST_CID = 3;

export interface GuestClientOptions extends ExchangeOptions {
  address: ControlAddress;
  /** Our own CID, put in every request (the host compares it with the connection's real CID on vsock). */
  senderCid?: number;
  /** `auto` (default) asks the host first; `v1` / `legacy` skip the question. */
  protocol?: 'auto' | RequestFormat;
}

export interface HostProtocol {
  format: RequestFormat;
  /** The host's version; 0.0.0 for a legacy host, which cannot say. */
  version: ProtocolVersion;
}

export class GuestClient {
  private readonly address: ControlAddress;
  private readonly senderCid: number;
  private readonly exchangeOptions: ExchangeOptions;
  private readonly forced: RequestFormat | undefined;
  private detected: HostProtocol | undefined;

  constructor(options: GuestClientOptions) {
    const { address, senderCid, protocol, ...rest } = options;
    this.address = address;
    this.senderCid = senderCid ?? DEFAULT_GUEST_CID;
    this.exchangeOptions = rest;
    this.forced = protocol === 'auto' ? undefined : protocol;
  }

  /**
   * Asks the host which protocol it speaks (the GetVsockProtocol command). Returns a refusal as a Response;
   * throws HostlinkError when the host cannot be reached or its reply is not understood.
   */
  async protocol(): Promise<HostProtocol | Response> {
    if (this.detected) return this.detected;
    if (this.forced === 'legacy') return (this.detected = { format: 'legacy', version: { major: 0, minor: 0, patch: 0 } });
    const bytes = await exchange(this.address, encodeRequest({ senderCid: this.senderCid, command: { type: 'get-vsock-protocol' } }), this.exchangeOptions);
    let reply: Response;
    try {
      reply = decodeResponse(bytes);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      // A v0 host answers anything it accepts with the legacy literal.
      if (decodeLegacyResponse(bytes).ok) return (this.detected = { format: 'legacy', version: { major: 0, minor: 0, patch: 0 } });
      throw new HostlinkError('protocol', `the host at ${formatControlAddress(this.address)} sent a reply this guest does not understand: ${preview(bytes)}`);
    }
    if (!reply.ok) return reply;
    if (reply.payload.kind !== 'HostOSVsockVersion') {
      throw new HostlinkError('protocol', `the host answered the protocol question with ${reply.payload.kind}, not a version`);
    }
    const v = reply.payload.version;
    if (v.major === VSOCK_PROTOCOL_VERSION.major || this.forced === 'v1') return (this.detected = { format: 'v1', version: v });
    if (v.major === 0) return (this.detected = { format: 'legacy', version: v });
    throw new HostlinkError(
      'incompatible_version',
      `the host speaks command-channel protocol ${formatVersion(v)}; this guest speaks ${formatVersion(VSOCK_PROTOCOL_VERSION)} and the legacy 0.x format: upgrade hostlink on the guest`,
    );
  }

  /** Sends one command. A host refusal is `{ ok: false }`; transport and protocol failures throw HostlinkError. */
  async send(command: Command): Promise<Response> {
    if (this.forced === 'v1' && command.type !== 'get-vsock-protocol') return this.sendV1(command);
    const proto = await this.protocol();
    if (!('format' in proto)) return proto; // refused already at the version question
    if (command.type === 'get-vsock-protocol') return { ok: true, payload: { kind: 'HostOSVsockVersion', version: proto.version } };
    return proto.format === 'legacy' ? this.sendLegacy(command) : this.sendV1(command);
  }

  private async sendV1(command: Command): Promise<Response> {
    const bytes = await exchange(this.address, encodeRequest({ senderCid: this.senderCid, command }), this.exchangeOptions);
    try {
      return decodeResponse(bytes);
    } catch (e) {
      if (e instanceof WireError) throw new HostlinkError('protocol', `${e.message}: ${preview(bytes)}`);
      throw e;
    }
  }

  private async sendLegacy(command: Command): Promise<Response> {
    // The reference guest answers this itself for a v0 host, which has no such command.
    if (command.type === 'get-hostos-version') return { ok: true, payload: { kind: 'HostOSVersion', version: LEGACY_HOSTOS_VERSION } };
    let body: Buffer;
    try {
      body = encodeLegacyRequest({ senderCid: this.senderCid, command });
    } catch (e) {
      if (e instanceof WireError) throw new HostlinkError('incompatible_version', `the host only speaks the legacy format: ${e.message}`);
      throw e;
    }
    try {
      return decodeLegacyResponse(await exchange(this.address, body, this.exchangeOptions));
    } catch (e) {
      // A v0 host may reboot into the upgrade before answering: a hang-up after the request is success.
      if (command.type === 'upgrade' && e instanceof ExchangeError && e.reached && e.code === 'channel_closed') {
        return { ok: true, payload: { kind: 'NoPayload' } };
      }
      throw e;
    }
  }
}

function preview(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('utf8');
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
