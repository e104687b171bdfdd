/** What a handler gets besides its command. Handlers return a payload or throw an Error whose message is the reply's Err text. */
import type { AgentConfig } from '../config.js';
import type { Command, CommandType, Payload } from '../wire.js';
import type { CommandSlots } from './run.js';

export interface HandlerContext {
  config: AgentConfig;
  /**
   * Aborted when the request's time is up, or when the agent shuts down (reason AGENT_STOPPING, see
   * whyStopped): stop downloads and commands.
   */
  signal: AbortSignal;
  /** Aborted when the agent shuts down: stop background work, start nothing the agent would not see through. */
  closing: AbortSignal;
  log(line: string): void;
  /** Runs `fn` once the reply has been written (or could not be): for work the guest must not wait for. */
  afterReply(fn: () => void): void;
  /** Keeps the agent's close() waiting for background work (notify). */
  track(work: Promise<unknown>): void;
  /** Runs a configured command within the agent's limit on commands at once, stopped by `signal`. */
  run(argv: readonly string[]): Promise<void>;
  /** Agent-wide state shared by requests. */
  state: AgentState;
}

/** An upgrade image this agent process downloaded and verified itself. */
export interface VerifiedImage {
  path: string;
  sha256: string;
  ino: number;
  dev: number;
  size: number;
}

export interface AgentState {
  /** Only one upgrade at a time: they share the staging directory. */
  upgradeRunning: boolean;
  /**
   * The start-upgrade-guest-vm commands running. The guest upgrade VM rewrites the guest's disks, so it and a
   * host upgrade (whose reboot can land at any time after its install) never run at once.
   */
  guestUpgradeVms: number;
  /**
   * Set once an installed upgrade's reboot is promised, and never cleared in this process: until the host
   * reboots, another upgrade (or the guest upgrade VM) would run while that reboot can land.
   */
  rebootPending: boolean;
  verified?: VerifiedImage;
  /** Notifications accepted and still being written (bounded by handlers.notify.maxPending). */
  notifiesPending: number;
  /** Slots for configured commands (maxCommands). */
  commands: CommandSlots;
  /** One set-node-id at a time (a single slot, taken in arrival order). */
  nodeIdTurn: CommandSlots;
}

export type Handler<T extends CommandType = CommandType> = (command: Extract<Command, { type: T }>, ctx: HandlerContext) => Promise<Payload>;

export type HandlerTable = { [T in CommandType]: Handler<T> };
