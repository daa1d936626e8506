#!/usr/bin/env node
// The `sluice` command: runs the TypeScript sources through tsx, so no build step stands
// between `npm install` and the first run.
import { register } from 'tsx/esm/api';

register();
await import('../workers/cli/main.ts');
