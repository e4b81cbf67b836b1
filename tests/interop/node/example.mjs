// A chat.v1 client in Node.js with @grpc/grpc-js and @grpc/proto-loader:
// connect as a user, create a group, send to it, read the delivery, list the
// channels. Its own names (grace, hall), so it runs beside the README's
// `buf curl` lines and `chat-client chat --user alice`.
//
// From the repository root (test/example.test.mjs runs it so):
//   npm --prefix tests/interop/node ci
//   node tests/interop/node/example.mjs 127.0.0.1:13111
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

// The repository's proto/ folder, from the directory this runs in (the
// repository root). chat/v1/chat.proto imports google/protobuf/timestamp.proto,
// which proto-loader resolves from the well-known types it bundles.
const PROTO_DIR = process.env.CHAT_PROTO_DIR ?? 'proto';
const TIMEOUT_MS = 5000;

export async function runExample(target, username = 'grace', group = 'hall') {
  const definition = protoLoader.loadSync('chat/v1/chat.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true, // field names as in the .proto: message_id, sent_at
    longs: String, // uint64 ids as strings
    enums: String, // CHANNEL_TYPE_GROUP rather than 2
    defaults: true, // member_count: 0 and joined: false are present
    oneofs: true, // event: 'connected' | 'delivery' (also 'membership' | 'typing' when asked for)
  });
  const { ChatService } = grpc.loadPackageDefinition(definition).chat.v1;
  const client = new ChatService(target, grpc.credentials.createInsecure());

  // Every RPC except Connect names its caller in the `authorization` header.
  const metadata = new grpc.Metadata();
  metadata.set('authorization', username);
  const call = (method, request) =>
    new Promise((resolve, reject) => {
      const options = { deadline: Date.now() + TIMEOUT_MS };
      client[method](request, metadata, options, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });

  // Connect opens the user's inbox; its first event is `connected`.
  const stream = client.Connect({ username });
  const events = stream[Symbol.asyncIterator]();
  const nextEvent = async () => {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('no event in time')), TIMEOUT_MS);
    });
    try {
      const { value } = await Promise.race([events.next(), timeout]);
      return value;
    } finally {
      clearTimeout(timer);
    }
  };

  try {
    const first = await nextEvent();
    if (first?.event !== 'connected') {
      throw new Error(`expected a connected event, got ${JSON.stringify(first)}`);
    }

    await call('CreateGroupChat', { name: group });
    const sent = await call('SendMessage', { recipient: group, text: 'Hello, group!' });

    // The group's members, the sender included, get the message in a delivery.
    const second = await nextEvent();
    const [delivered] = second.delivery.messages;

    const { channels } = await call('ListChannels', {});
    return { connected: first.connected.username, sent, delivered, channels };
  } finally {
    // Ending the stream disconnects the user: they leave every group, and
    // the group is deleted when its last member leaves.
    stream.cancel();
    client.close();
  }
}

// Run as a script: node example.mjs [host:port]
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = process.argv[2] ?? '127.0.0.1:13111';
  const result = await runExample(target);
  console.log(JSON.stringify(result, null, 2));
}
