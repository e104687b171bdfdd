/** The software version of this build (the protocol version is separate: see src/protocol/generated.ts). */
export const HOSTLINK_VERSION = '0.1.0';
