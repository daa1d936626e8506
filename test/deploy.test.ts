/**
 * The deployment files: docker-compose.yml and the Dockerfile. Docker cannot run here, so the
 * compose file is validated by `docker-compose config` when Debian's docker-compose is on PATH,
 * and always by reading it: the services, Redis's persistence, the workers' Redis, the files it
 * mounts, and how the image is built.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Redis } from 'ioredis';
import { freePort } from '../workers/embedded/free-port.js';
import { waitForPort } from '../workers/embedded/redis-server.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const composeText = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

interface Service {
  image?: string;
  build?: string | { context?: string };
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string> | string[];
  volumes?: string[];
  ports?: string[];
  profiles?: string[];
  container_name?: string;
}
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;

/** The environment as a map, whichever form the file uses. */
function env(s: Service): Record<string, string> {
  if (Array.isArray(s.environment)) return Object.fromEntries(s.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  return s.environment ?? {};
}

function hasDockerCompose(): boolean {
  return spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;
}

describe('docker-compose.yml', () => {
  it.skipIf(!hasDockerCompose())('passes `docker-compose config` (with the required secrets set)', () => {
    // the secrets are required (${VAR:?...}): set dummies so that interpolation passes
    const run = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, SLUICE_ADMIN_TOKEN: 'test-admin', SLUICE_ADMIN_READ_TOKEN: 'test-read', GRAFANA_ADMIN_PASSWORD: 'test-grafana' },
    });
    expect(run.status, run.stderr).toBe(0);
  });

  it.skipIf(!hasDockerCompose())('refuses to start without the admin token', () => {
    const envWithout = { ...process.env };
    delete envWithout.SLUICE_ADMIN_TOKEN;
    const run = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...envWithout, SLUICE_ADMIN_READ_TOKEN: 'r', GRAFANA_ADMIN_PASSWORD: 'g' },
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('SLUICE_ADMIN_TOKEN');
  });

  it('gives Redis a password, REDIS_PASSWORD or its documented default, and every REDIS_URL carries it', () => {
    // no skip: the password is only checked once compose has interpolated the file
    if (!hasDockerCompose()) throw new Error('docker-compose not found: apt-get install -y docker-compose (Debian v1 validates the file; no engine needed)');
    const resolved = (password?: string) => {
      const e: NodeJS.ProcessEnv = { ...process.env, SLUICE_ADMIN_TOKEN: 'a', SLUICE_ADMIN_READ_TOKEN: 'r', GRAFANA_ADMIN_PASSWORD: 'g' };
      delete e.REDIS_PASSWORD;
      if (password) e.REDIS_PASSWORD = password;
      const run = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: root, encoding: 'utf8', env: e });
      expect(run.status, run.stderr).toBe(0);
      return (parse(run.stdout) as { services: Record<string, Service> }).services;
    };
    for (const [given, expected] of [[undefined, 'sluice-redis-local'], ['0f3a9c', '0f3a9c']] as const) {
      const s = resolved(given);
      expect(env(s.redis!).REDIS_PASSWORD).toBe(expected);
      expect(env(s.redis!).REDISCLI_AUTH).toBe(expected);
      for (const name of ['discovery', 'harvesting', 'admin']) expect(new URL(env(s[name]!).REDIS_URL!).password, name).toBe(expected);
    }
  });

  it("Redis's start command requires the password and keeps it off the command line", async () => {
    // the compose command, run here as the container would, minus the two container-only steps
    // (the image's entrypoint dropping to the redis user, and the chown for it)
    const script = (services.redis!.command as string[])[2]!
      .replace(/\$\$/g, '$')
      .replace(/chown redis:redis \S+ &&/, '')
      .replace('exec docker-entrypoint.sh redis-server', 'exec redis-server');
    const dir = mkdtempSync(join(tmpdir(), 'sluice-compose-redis-'));
    const port = await freePort();
    const child = spawn('sh', ['-c', `${script.replaceAll('/tmp/redis-auth.conf', join(dir, 'auth.conf'))} --port ${port} --bind 127.0.0.1 --dir ${dir} --appendonly no`], {
      env: { ...process.env, REDIS_PASSWORD: 'pw-0f3a9c' },
      stdio: 'ignore',
    });
    try {
      await waitForPort(port, 10_000, child);
      // no ready check: it would fail on NOAUTH before the ping could
      const anonymous = new Redis({ port, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
      anonymous.on('error', () => undefined);
      await anonymous.connect();
      await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
      anonymous.disconnect();
      // the services' URL form
      const url = new URL(env(services.admin!).REDIS_URL!.replace('${REDIS_PASSWORD:-sluice-redis-local}', 'pw-0f3a9c'));
      url.hostname = '127.0.0.1';
      url.port = String(port);
      const client = new Redis(url.toString(), { maxRetriesPerRequest: 0 });
      expect(await client.ping()).toBe('PONG');
      expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      client.disconnect();
      expect(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8')).not.toContain('pw-0f3a9c');
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has the services of the fleet', () => {
    for (const name of ['redis', 'discovery', 'harvesting', 'admin', 'prometheus', 'grafana']) expect(services, name).toHaveProperty(name);
  });

  it('runs Redis with AOF persistence on a volume', () => {
    const redis = services.redis!;
    const command = Array.isArray(redis.command) ? redis.command.join(' ') : String(redis.command);
    expect(command).toMatch(/--appendonly yes/);
    const data = (redis.volumes ?? []).find((v) => v.split(':')[1] === '/data');
    expect(data, 'a volume at /data').toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(data!.split(':')[0]);
  });

  it('points the workers and the admin server at the redis service', () => {
    for (const name of ['discovery', 'harvesting', 'admin']) {
      const url = env(services[name]!).REDIS_URL;
      expect(url, name).toBeDefined();
      expect(new URL(url!).hostname, name).toBe('redis');
    }
  });

  it('runs the sluice commands the CLI really has', () => {
    const main = readFileSync(join(root, 'workers/cli/main.ts'), 'utf8');
    expect(services.discovery!.command).toEqual(['worker', 'discovery']);
    expect(services.harvesting!.command).toEqual(['worker', 'harvesting']);
    const admin = services.admin!.command as string[];
    expect(admin[0]).toBe('admin');
    for (const flag of admin.filter((a) => a.startsWith('--'))) expect(main, `sluice admin ${flag}`).toContain(`'${flag} <`);
    expect(env(services.admin!).SLUICE_ADMIN_TOKEN).toBeDefined();
    for (const name of ['discovery', 'harvesting']) {
      const e = env(services[name]!);
      expect(e.SLUICE_CONFIG, name).toBeDefined();
      expect(e.SLUICE_TIKTOK_BASE_URL, name).toBeDefined();
    }
  });

  it('lets the workers scale (no fixed container name or host port)', () => {
    for (const name of ['discovery', 'harvesting']) {
      expect(services[name]!.container_name, name).toBeUndefined();
      expect(services[name]!.ports, name).toBeUndefined();
    }
  });

  it('mounts only files and folders that exist in the repo', () => {
    const mounts = Object.values(services).flatMap((s) => (s.volumes ?? []).filter((v) => v.startsWith('./')));
    expect(mounts).toContain('./config/alerts.yml:/etc/prometheus/alerts.yml:ro');
    expect(mounts.some((m) => m.startsWith('./config/grafana-dashboard.json:'))).toBe(true);
    for (const m of mounts) expect(existsSync(join(root, m.split(':')[0]!)), m).toBe(true);
  });

  it('provisions Prometheus with the alert rules and Grafana with the dashboard', () => {
    const prom = parse(readFileSync(join(root, 'config/prometheus.yml'), 'utf8')) as { rule_files: string[]; scrape_configs: { static_configs: { targets: string[] }[] }[] };
    expect(prom.rule_files).toContain('/etc/prometheus/alerts.yml');
    expect(prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets))).toContain('admin:8080');
    const ds = parse(readFileSync(join(root, 'config/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: { type: string; url: string }[] };
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const boards = parse(readFileSync(join(root, 'config/grafana/provisioning/dashboards/sluice.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
    const dashboardMount = services.grafana!.volumes!.find((v) => v.startsWith('./config/grafana-dashboard.json:'))!;
    expect(dashboardMount.split(':')[1]!.startsWith(`${boards.providers[0]!.options.path}/`)).toBe(true);
    const provisioning = services.grafana!.volumes!.find((v) => v.split(':')[1] === '/etc/grafana/provisioning');
    expect(provisioning).toBe('./config/grafana/provisioning:/etc/grafana/provisioning:ro');
  });
});

describe('Dockerfile', () => {
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'));

  it('builds on Debian bookworm with Node 20', () => {
    expect(instructions[0]).toMatch(/^FROM node:20-bookworm-slim\b/);
  });

  it('installs Chromium from apt and dependencies with npm ci', () => {
    expect(instructions.some((l) => /^RUN .*apt-get install\b.*\bchromium\b/.test(l))).toBe(true);
    expect(instructions.some((l) => /^RUN .*\bnpm ci\b/.test(l))).toBe(true);
    expect(instructions.some((l) => /\bnpm install\b/.test(l))).toBe(false);
  });

  it('runs the sluice command', () => {
    expect(instructions).toContain('ENTRYPOINT ["node", "bin/sluice.js"]');
    expect(existsSync(join(root, 'bin/sluice.js'))).toBe(true);
  });

  it('copies every folder the command needs at run time', () => {
    const copied = instructions.filter((l) => l.startsWith('COPY ')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    for (const dir of ['bin', 'src', 'lua', 'config', 'jobs', 'workers', 'package.json', 'package-lock.json']) expect(copied, dir).toContain(dir);
    // the image runs the fleet from source (tsx), the library included: the package's built dist/ is not needed
    expect(copied).toContain('tsconfig.json');
  });
});
