#!/usr/bin/env node
// The fleet's `sluice` command (this repository's app, not part of the published library): runs
// the TypeScript sources through tsx, with the repository's tsconfig so that `sluice/...` imports
// resolve to the library's sources whatever the working directory.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../workers/cli/main.ts');
