/**
 * The one Chromium of a worker process. Playwright's own browser download cannot run here (no
 * internet but the npm registry), so the fleet drives Debian's Chromium.
 */
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright';

/** Where Debian installs Chromium; SLUICE_CHROMIUM overrides it. */
export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Flags for a headless scraper: no sandbox (containers run as root), no GPU, and none of the
 * background traffic Chromium makes on its own (updates, sync, QUIC probes), so every request the
 * browser sends is one a page asked for.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Chromium is not installed where we look for it. */
export class ChromiumMissingError extends Error {
  constructor(readonly path: string) {
    super(`Chromium not found at ${path}: install it with \`apt-get install -y chromium\` (or set SLUICE_CHROMIUM to its path)`);
    this.name = 'ChromiumMissingError';
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

/** Launches headless Chromium with the fleet's flags. */
export async function launchBrowser(options: { executablePath?: string } = {}): Promise<Browser> {
  const executablePath = assertChromium(options.executablePath);
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS] });
}
