/**
 * The three parts of undici the proxy uses — Pool, Agent and buildConnector —
 * loaded from their own modules. The package's entry point also loads fetch,
 * WebSocket, EventSource, the caches and the mocks: ~12 MiB of RSS per sidecar
 * that nothing here uses. They are the very classes `undici` exports (the
 * entry point requires these same files); undici-core.test.ts checks that
 * against the pinned version, so an upgrade that moves them fails the tests.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;
