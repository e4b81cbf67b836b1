// A chat.v1 client in Node.js for a server in token mode over TLS: the
// backend that holds the secret mints an HS256 token with `jsonwebtoken`;
// the client trusts the server's CA and sends the token on Connect and on
// every other call.
//
//   node example-secure.mjs 127.0.0.1:13111 ca.pem secret-file
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import jwt from 'jsonwebtoken';

const PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));
const TIMEOUT_MS = 5000;

// What the backend does: an HS256 token whose `sub` is the username.
export function mintToken(secret, username, ttlSeconds = 300) {
  return jwt.sign({ sub: username }, secret, { algorithm: 'HS256', expiresIn: ttlSeconds });
}

export async function runSecureExample(target, caPem, token, username = 'alice') {
  const definition = protoLoader.loadSync('chat/v1/chat.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const { ChatService } = grpc.loadPackageDefinition(definition).chat.v1;
  const client = new ChatService(target, grpc.credentials.createSsl(caPem));

  // Connect and every other call carry the token; the username given to
  // Connect must be the token's `sub`.
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const deadline = () => ({ deadline: Date.now() + TIMEOUT_MS });

  const stream = client.Connect({ username }, metadata, deadline());
  const events = stream[Symbol.asyncIterator]();
  try {
    const { value: first } = await events.next();
    const sent = await new Promise((resolve, reject) => {
      const request = { recipient: username, text: 'Hello over TLS' };
      client.SendMessage(request, metadata, deadline(), (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });
    const { value: second } = await events.next();
    const [delivered] = second.delivery.messages;
    return { connected: first.connected.username, sent, delivered };
  } finally {
    stream.cancel();
    client.close();
  }
}

// Run as a script: node example-secure.mjs host:port ca.pem secret-file
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [target, caFile, secretFile] = process.argv.slice(2);
  const secret = readFileSync(secretFile, 'utf8').split('\n')[0];
  const token = mintToken(secret, 'alice');
  const result = await runSecureExample(target, readFileSync(caFile), token);
  console.log(JSON.stringify(result, null, 2));
}
