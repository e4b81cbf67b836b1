// grpc-js helpers for the tests: the ChatService client, unary calls with
// deadlines, Connect sessions whose events are read with timeouts, and
// polling with a deadline.

import assert from 'node:assert/strict';
import path from 'node:path';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

import { REPO_ROOT } from './server.mjs';

export { grpc };

/** Where chat/v1/chat.proto lives. google/protobuf/timestamp.proto is not
 * there: proto-loader resolves it from the well-known types it bundles. */
export const PROTO_DIR = path.join(REPO_ROOT, 'proto');

/** Field names as in the .proto, uint64 as strings, enums by name, unset
 * fields with their defaults, and the name of the set oneof field in
 * `event`. */
export const LOADER_OPTIONS = {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Deadline of every unary call. */
export const CALL_TIMEOUT_MS = 5_000;
/** How long a test waits for one stream event or one polled condition. */
export const WAIT_TIMEOUT_MS = 5_000;

let chatServiceCtor;

/** The generated grpc-js client constructor for chat.v1.ChatService. */
export function chatService() {
  if (!chatServiceCtor) {
    const definition = protoLoader.loadSync('chat/v1/chat.proto', LOADER_OPTIONS);
    chatServiceCtor = grpc.loadPackageDefinition(definition).chat.v1.ChatService;
  }
  return chatServiceCtor;
}

/** A new client for `target` (host:port), without TLS. */
export function newClient(target) {
  const ChatService = chatService();
  return new ChatService(target, grpc.credentials.createInsecure());
}

/** The name of a gRPC status code, e.g. 5 -> "NOT_FOUND". */
export function statusName(code) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === code) ?? `code ${code}`;
}

/** Metadata carrying `authorization: <value>`, or none when `value` is
 * undefined. */
export function authMetadata(value) {
  const metadata = new grpc.Metadata();
  if (value !== undefined) {
    metadata.set('authorization', value);
  }
  return metadata;
}

/**
 * Calls a unary RPC with a deadline.
 *
 * @param {grpc.Client} client
 * @param {string} method e.g. 'ListChannels'
 * @param {object} request
 * @param {string | undefined} authorization the header's value, or
 *   undefined to send none
 */
export function unary(client, method, request, authorization) {
  return new Promise((resolve, reject) => {
    client[method](
      request,
      authMetadata(authorization),
      { deadline: Date.now() + CALL_TIMEOUT_MS },
      (error, response) => (error ? reject(error) : resolve(response)),
    );
  });
}

/** Asserts that `promise` fails with gRPC status `code`; returns the error. */
export async function expectStatus(promise, code, what = 'the call') {
  let error;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  assert.ok(error, `${what} succeeded; expected ${statusName(code)}`);
  assert.equal(
    statusName(error.code),
    statusName(code),
    `${what} failed with ${statusName(error.code)} (${error.details ?? error.message}); expected ${statusName(code)}`,
  );
  return error;
}

/**
 * Calls `probe` until it returns a truthy value and returns that value;
 * fails after `timeoutMs` with `what` and the last value seen.
 */
export async function waitFor(probe, what, timeoutMs = WAIT_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    last = await probe();
    if (last) {
      return last;
    }
    if (Date.now() >= deadline) {
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** Rejects after `ms` unless `promise` settles first. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One open Connect stream. Events are queued as they arrive and read with
 * timeouts; the stream's error (its final status) is kept.
 */
export class Session {
  constructor(call, username) {
    this.call = call;
    this.username = username;
    /** Events not read yet. */
    this.events = [];
    /** Messages of a delivery that were not read yet. */
    this.pendingMessages = [];
    /** The status error the stream ended with, once it has. */
    this.error = null;
    this.ended = false;
    this.wake = () => {};
    call.on('data', (event) => {
      this.events.push(event);
      this.wake();
    });
    call.on('error', (error) => {
      this.error = error;
      this.ended = true;
      this.wake();
    });
    call.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** The next event; fails when the stream ended or after `timeoutMs`. */
  async nextEvent(timeoutMs = WAIT_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.events.length > 0) {
        return this.events.shift();
      }
      if (this.error) {
        throw this.error;
      }
      if (this.ended) {
        assert.fail(`${this.username}'s Connect stream ended without an error`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        assert.fail(`timed out after ${timeoutMs} ms waiting for an event on ${this.username}'s stream`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = () => {};
    }
  }

  /** The next `count` messages, across as many deliveries as they come in. */
  async messages(count, timeoutMs = WAIT_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    while (this.pendingMessages.length < count) {
      const event = await this.nextEvent(Math.max(deadline - Date.now(), 1));
      assert.equal(event.event, 'delivery', `expected a delivery on ${this.username}'s stream`);
      const { messages } = event.delivery;
      assert.ok(
        messages.length >= 1 && messages.length <= 256,
        `a delivery carries 1 to 256 messages, got ${messages.length}`,
      );
      this.pendingMessages.push(...messages);
    }
    return this.pendingMessages.splice(0, count);
  }

  /** The next message. */
  async nextMessage(timeoutMs = WAIT_TIMEOUT_MS) {
    const [message] = await this.messages(1, timeoutMs);
    return message;
  }

  /** Resolves with the stream's final error once it has ended. */
  async waitForEnd(timeoutMs = WAIT_TIMEOUT_MS) {
    await waitFor(() => this.ended, `${this.username}'s stream to end`, timeoutMs);
    return this.error;
  }

  /** Cancels the stream, which disconnects the user. */
  close() {
    this.call.cancel();
  }
}

/** What `ConnectResponse.connected.resume_status` may be. */
export const RESUME_STATUSES = [
  'RESUME_STATUS_UNSPECIFIED',
  'RESUME_STATUS_RESUMED',
  'RESUME_STATUS_GAP',
  'RESUME_STATUS_UNKNOWN',
];

/**
 * Opens a Connect stream as `username` and waits for its `connected` event,
 * kept as `session.connected`. With `resume` ({ token, after_id }) the
 * request asks to resume that session; without it the request has no
 * `resume` field at all, as before the field existed. Rejects with the
 * stream's status error when the server refuses it.
 */
export async function connect(client, username, timeoutMs = WAIT_TIMEOUT_MS, resume = undefined) {
  const request = resume === undefined ? { username } : { username, resume };
  const session = new Session(client.Connect(request), username);
  let first;
  try {
    first = await session.nextEvent(timeoutMs);
  } catch (error) {
    session.close();
    throw error;
  }
  assert.equal(first.event, 'connected', 'the first event is `connected`');
  const { connected } = first;
  assert.deepEqual(Object.keys(connected).sort(), ['epoch', 'resume_status', 'resume_token', 'username']);
  assert.equal(connected.username, username);
  assert.ok(connected.resume_token.length >= 16, `a resume token: ${JSON.stringify(connected)}`);
  assert.ok(connected.epoch.length > 0, `an epoch: ${JSON.stringify(connected)}`);
  assert.ok(RESUME_STATUSES.includes(connected.resume_status), `a resume status: ${connected.resume_status}`);
  if (resume === undefined) {
    assert.equal(connected.resume_status, 'RESUME_STATUS_UNSPECIFIED', 'no resume was asked');
  }
  session.connected = connected;
  return session;
}

/** The RPCs other than Connect, made as one user (bare `authorization`). */
export class User {
  constructor(client, name, authorization = name) {
    this.client = client;
    this.name = name;
    this.authorization = authorization;
  }

  create(name) {
    return unary(this.client, 'CreateGroupChat', { name }, this.authorization);
  }

  join(name) {
    return unary(this.client, 'JoinGroupChat', { name }, this.authorization);
  }

  leave(name) {
    return unary(this.client, 'LeaveGroupChat', { name }, this.authorization);
  }

  send(recipient, text) {
    return unary(this.client, 'SendMessage', { recipient, text }, this.authorization);
  }

  async list() {
    const { channels } = await unary(this.client, 'ListChannels', {}, this.authorization);
    return channels;
  }

  /** GetHistory of `group`, with `after_id`, `before_id` and `limit` from `range`. */
  history(group, range = {}) {
    return unary(this.client, 'GetHistory', { group, ...range }, this.authorization);
  }
}

let nameSerial = 0;

/**
 * Everything one test opens, closed when the test ends: a client, and the
 * users it connects.
 */
export class Harness {
  constructor(target) {
    this.target = target;
    this.client = newClient(target);
    this.sessions = [];
  }

  /** A name no other test of this file uses: `${base}-${n}`. */
  name(base) {
    nameSerial += 1;
    return `${base}-${nameSerial}`;
  }

  /** Connects `username` (resuming `resume` when given) and returns its
   * session and its `User`. */
  async connect(username, resume = undefined) {
    const session = await connect(this.client, username, WAIT_TIMEOUT_MS, resume);
    this.sessions.push(session);
    return { session, user: new User(this.client, username) };
  }

  close() {
    for (const session of this.sessions) {
      session.close();
    }
    this.client.close();
  }
}

/** A harness that the test `t` closes when it ends. */
export function harness(t, server) {
  const h = new Harness(server.target);
  t.after(() => h.close());
  return h;
}

/** Channels whose names are in `names`, in list order. */
export function only(channels, names) {
  return channels.filter((channel) => names.includes(channel.name));
}

/** The channels a listing should show: users then groups, each by name. */
export function assertListOrder(channels) {
  const kinds = channels.map((channel) => channel.type);
  const firstGroup = kinds.indexOf('CHANNEL_TYPE_GROUP');
  if (firstGroup !== -1) {
    assert.ok(
      kinds.slice(firstGroup).every((kind) => kind === 'CHANNEL_TYPE_GROUP'),
      `users come before groups: ${JSON.stringify(kinds)}`,
    );
  }
  for (const kind of ['CHANNEL_TYPE_USER', 'CHANNEL_TYPE_GROUP']) {
    const names = channels.filter((channel) => channel.type === kind).map((channel) => channel.name);
    const sorted = [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    assert.deepEqual(names, sorted, `${kind} channels are sorted by name`);
  }
}
