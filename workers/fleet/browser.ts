/**
 * The one Chromium of a worker process. Playwright's own browser download cannot run here (no
 * internet but the npm registry), so the fleet drives Debian's Chromium.
 */
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright';

/** Where Debian installs Chromium; SLUICE_CHROMIUM overrides it. */
export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Flags for a headless scraper: no GPU, and none of the background traffic Chromium makes on its
 * own (updates, sync, QUIC probes), so every request the browser sends is one a page asked for.
 * The sandbox is not among them: see {@link sandboxed}.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  // No spare renderer: after each navigation Chromium starts one ahead for the next site, which a
  // fleet reading one site never uses (measured: 68 renderers started for 24 jobs in 4 contexts,
  // 8 with this, and 0.42-0.46 s of CPU per job instead of 0.55-0.65). A context's pages still get
  // a renderer of their own: processes are never shared across contexts, nor across sites.
  '--renderer-process-limit=1',
];

/** Chromium is not installed where we look for it. */
export class ChromiumMissingError extends Error {
  readonly code = 'CHROMIUM_MISSING';
  constructor(readonly path: string) {
    super(`Chromium not found at ${path}: install it with \`apt-get install -y chromium\` (or set SLUICE_CHROMIUM to its path)`);
    this.name = 'ChromiumMissingError';
  }
}

/**
 * Whether Chromium runs with its sandbox: whenever the process is not root (the image runs as
 * `node`). The renderer parses pages from the internet; its sandbox is what keeps a renderer
 * exploit inside the renderer. Chromium refuses to sandbox as root, so root (a developer's
 * container) is the one case without it.
 */
export function sandboxed(uid: number | undefined = process.getuid?.()): boolean {
  return uid !== 0;
}

/** Chromium could not start its sandbox (no user namespaces for an unprivileged user). */
export class ChromiumSandboxError extends Error {
  readonly code = 'CHROMIUM_SANDBOX';
  constructor(cause: unknown) {
    super(
      'Chromium could not start its sandbox: allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, ' +
        "or a container seccomp profile that permits them); the fleet does not run a browser that reads the internet without it",
      { cause },
    );
    this.name = 'ChromiumSandboxError';
  }
}

/** The Chromium executable to use: SLUICE_CHROMIUM, else /usr/bin/chromium. */
export function chromiumPath(): string {
  return process.env.SLUICE_CHROMIUM ?? DEFAULT_CHROMIUM_PATH;
}

/** Throws ChromiumMissingError unless the executable exists and can be run. */
export function assertChromium(path = chromiumPath()): string {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new ChromiumMissingError(path);
  }
  return path;
}

/** Launches headless Chromium with the fleet's flags, sandboxed unless the process is root. */
export async function launchBrowser(options: { executablePath?: string } = {}): Promise<Browser> {
  const executablePath = assertChromium(options.executablePath);
  const sandbox = sandboxed();
  try {
    // Playwright adds --no-sandbox unless told otherwise: say it, both ways
    return await chromium.launch({ executablePath, headless: true, chromiumSandbox: sandbox, args: sandbox ? [...CHROMIUM_ARGS] : ['--no-sandbox', ...CHROMIUM_ARGS] });
  } catch (err) {
    if (sandbox && /sandbox|namespace/i.test((err as Error).message)) throw new ChromiumSandboxError(err);
    throw err;
  }
}
