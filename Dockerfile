# Sluice: one image for the workers, the admin server and the CLI.
#   docker-compose build            (docker-compose.yml tags it sluice:local)
#   docker run --rm sluice:local --help
FROM node:20-bookworm-slim

# Chromium from Debian: Playwright drives it (SLUICE_CHROMIUM); Playwright's own browser download
# is never used. Fonts so that pages lay out as in a desktop browser.
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-liberation ca-certificates \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production \
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    SLUICE_CHROMIUM=/usr/bin/chromium

WORKDIR /app

# dependencies first, from the lockfile exactly, so source changes do not reinstall them
# (the fleet's own dependencies, tsx and Playwright among them, are the repository's devDependencies: the published library does not carry them)
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY lua ./lua
COPY config ./config
COPY jobs ./jobs
COPY workers ./workers

# the sluice command: `worker discovery|harvesting`, `admin`, `status`, `enqueue`, `export`
USER node
ENTRYPOINT ["node", "bin/sluice.js"]
CMD ["--help"]
