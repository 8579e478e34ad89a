import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HandlerStats } from '../stats.js';

/** Options of {@link prometheusMetrics} and {@link prometheusHandler}. */
export interface PrometheusOptions {
  /** Prefix of every metric name. Default `'wsmount_'`. */
  prefix?: string;
  /** Constant labels added to every sample (a handler's name when a process has several). */
  labels?: Readonly<Record<string, string>>;
}

/** Anything with a `stats()` snapshot: a {@link WebSocketHandler}. */
export interface StatsSource {
  stats(): HandlerStats;
}

/** The Prometheus text exposition (format 0.0.4) of a handler's counters. (Being built: issue 17.) */
export function prometheusMetrics(source: StatsSource | readonly StatsSource[], options: PrometheusOptions = {}): string {
  void source;
  void options;
  throw new Error('wsmount: prometheusMetrics() is not built yet');
}

/** A request handler that answers a scrape with {@link prometheusMetrics}. (Being built: issue 17.) */
export function prometheusHandler(source: StatsSource | readonly StatsSource[], options: PrometheusOptions = {}): (request: IncomingMessage, response: ServerResponse) => void {
  return (_request, response) => {
    response.end(prometheusMetrics(source, options));
  };
}
