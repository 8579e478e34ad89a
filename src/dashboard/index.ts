/**
 * `wsmount/dashboard`: a live page of a handler's counters for an app to mount on a route of its
 * own HTTP server, behind its own authentication. Zero dependencies: the page draws its charts
 * with its own small script, and reads a Server-Sent Events feed sampled once per tick.
 *
 * ```ts
 * import { createDashboard } from 'wsmount/dashboard';
 *
 * app.use('/admin/ws', requireAdmin, createDashboard(sockets));
 * ```
 *
 * @module
 */
export { createDashboard } from './dashboard.js';
export type {
  Dashboard,
  DashboardClient,
  DashboardOptions,
  DashboardPoint,
  DashboardRoute,
  DashboardSnapshot,
  DashboardSource,
  DashboardState,
  DashboardTotals,
  SlowConsumer,
} from './types.js';
