/**
 * @internal The connection's on/off state, packed into one small integer (`Sender.flags`): a
 * boolean field costs 8 bytes in every connection, a bit costs nothing. Each class of the
 * connection's chain reads and writes its own bits through accessors of the old field names.
 */
export const F_READ_PAUSED = 1;
export const F_USER_PAUSED = 2;
export const F_STREAM_HELD = 4;
export const F_CLOSE_SENT = 8;
export const F_ACTIVE = 16;
export const F_END_HELD = 32;
export const F_INFLATING = 64;
export const F_PONG_IN_FLIGHT = 128;
export const F_DRAIN_NOTICE_DUE = 256;
export const F_DRAIN_OWED = 512;
export const F_BUSY = 1024;
export const F_CLOSE_PENDING = 2048;
export const F_HOOK_BROKEN = 4096;
export const F_COMPRESSED = 8192;
export const F_ABANDONED = 16384;
export const F_END_PENDING = 32768;
export const F_CLOSE_RECEIVED = 65536;
export const F_AWAITING_PONG = 131072;
export const F_RAW_TEXT = 262144;
export const F_STREAMING = 524288;
/** Where the ready state's two bits start (Sender.state). */
export const F_STATE_SHIFT = 20;
