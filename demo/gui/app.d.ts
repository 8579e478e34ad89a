// Types for app.js, so the TypeScript tests can import it.
export interface GuiApp {
  /** The bound port. */
  port: number;
  /** The app's base URL, e.g. http://127.0.0.1:9002 (the dashboard is at `${url}/dashboard`). */
  url: string;
  /** Closes every dashboard socket (1001), then the HTTP server. */
  close(): Promise<void>;
}

export interface GuiAppOptions {
  port?: number;
  host?: string;
  /** Milliseconds between job steps. Default 500. */
  tickMs?: number;
}

export function startGuiApp(options?: GuiAppOptions): Promise<GuiApp>;
