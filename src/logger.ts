/** Log levels, quietest first (the seed's `loglevel`). */
export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

/** Where wsmount logs. `console` fits; so do pino and winston loggers. */
export interface Logger {
  error(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
  debug(message: string, ...details: unknown[]): void;
}

const RANK: Readonly<Record<LogLevel, number>> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };
const quiet = (): void => {};

/** Wraps `sink` so that messages below `level` cost one no-op call. */
export function levelLogger(sink: Partial<Logger>, level: LogLevel): Logger {
  const rank = RANK[level];
  const pick = (name: keyof Logger, at: number): Logger[keyof Logger] => {
    const fn = sink[name];
    return rank >= at && typeof fn === 'function' ? fn.bind(sink) : quiet;
  };
  return { error: pick('error', 1), warn: pick('warn', 2), info: pick('info', 3), debug: pick('debug', 4) };
}
