// Starts and stops a real chat-server process for the tests.
//
// The binary comes from CHAT_SERVER_BIN, else from
// ${CARGO_TARGET_DIR:-<repo>/target}/debug/chat-server. The server is started
// on 127.0.0.1 port 0; the port it picked is read from its "listening" log
// line on stderr.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** How long the server gets to print its listening line. */
const START_TIMEOUT_MS = 15_000;
/** How long SIGTERM gets before SIGKILL (the server promises 5 s). */
const STOP_TIMEOUT_MS = 6_000;
/** How much of the server's stderr is kept for failure messages. */
const LOG_KEEP_CHARS = 64 * 1024;

/**
 * The port in the server's "listening" log line, or null for another line.
 * Reads the default format (slog-term, `... INFO listening, ..., port: 39593,
 * address: 127.0.0.1:0`) and `--log-format json` (`{"msg":"listening",
 * ..., "port":39593}`).
 */
export function listeningPort(line) {
  const term = /\blistening\b.*\bport: (\d+)/.exec(line);
  if (term) {
    return Number(term[1]);
  }
  if (line.startsWith('{')) {
    try {
      const record = JSON.parse(line);
      if (record.msg === 'listening' && Number.isInteger(record.port)) {
        return record.port;
      }
    } catch {
      // Not JSON after all.
    }
  }
  return null;
}

/** The chat-server binary the tests run. */
export function serverBinary() {
  if (process.env.CHAT_SERVER_BIN) {
    return process.env.CHAT_SERVER_BIN;
  }
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(REPO_ROOT, 'target');
  return path.resolve(REPO_ROOT, targetDir, 'debug', 'chat-server');
}

/**
 * Starts `chat-server --listen 127.0.0.1:0 --threads 2 ...extraArgs` and
 * resolves once it listens.
 *
 * @param {string[]} extraArgs more flags, e.g. ['--max-connections', '2']
 * @returns {Promise<ChatServer>}
 */
export async function startServer(extraArgs = []) {
  const bin = serverBinary();
  if (!existsSync(bin)) {
    throw new Error(
      `chat-server binary not found at ${bin}; build it with ` +
        '`cargo build --bin chat-server` or set CHAT_SERVER_BIN',
    );
  }
  const args = ['--listen', '127.0.0.1:0', '--threads', '2', ...extraArgs];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const server = new ChatServer(child);
  server.port = await server.waitForPort();
  server.target = `127.0.0.1:${server.port}`;
  return server;
}

/** A running chat-server child process. */
export class ChatServer {
  constructor(child) {
    this.child = child;
    /** @type {number} */
    this.port = 0;
    /** host:port for grpc-js clients. */
    this.target = '';
    this.log = '';
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    this.spawnError = new Promise((resolve) => child.once('error', resolve));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      this.log = (this.log + chunk).slice(-LOG_KEEP_CHARS);
    });
  }

  /** Resolves with the port from the "listening ... port: N" log line. */
  waitForPort() {
    return new Promise((resolve, reject) => {
      let buffered = '';
      let settled = false;
      const done = (error, port) => {
        if (settled) {
          return;
        }
        settled = true;
        clearTimeout(timer);
        this.child.stderr.off('data', onData);
        if (error) {
          this.child.kill('SIGKILL');
          reject(error);
        } else {
          resolve(port);
        }
      };
      const onData = (chunk) => {
        buffered += chunk;
        // Only whole lines: a line cut mid-number would give a wrong port.
        const lines = buffered.split('\n');
        buffered = lines.pop();
        for (const line of lines) {
          const port = listeningPort(line);
          if (port) {
            done(null, port);
            return;
          }
        }
      };
      const timer = setTimeout(
        () => done(new Error(`chat-server printed no listening line within ${START_TIMEOUT_MS} ms:\n${this.log}`)),
        START_TIMEOUT_MS,
      );
      this.child.stderr.on('data', onData);
      this.spawnError.then((error) => done(new Error(`cannot start chat-server: ${error.message}`)));
      this.exited.then(({ code, signal }) =>
        done(new Error(`chat-server exited (code ${code}, signal ${signal}) before listening:\n${this.log}`)),
      );
    });
  }

  /**
   * Stops the server with SIGTERM, or SIGKILL when it has not exited within
   * STOP_TIMEOUT_MS. Resolves with how it exited; `killed` tells whether
   * SIGKILL was needed.
   */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return { ...(await this.exited), killed: false };
    }
    this.child.kill('SIGTERM');
    let timer;
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
    });
    const first = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (first !== 'timeout') {
      return { ...first, killed: false };
    }
    this.child.kill('SIGKILL');
    return { ...(await this.exited), killed: true };
  }
}
