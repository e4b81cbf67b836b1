// The buf curl command lines that test/buf-curl.test.mjs runs, written as a
// reader types them against a server on the default port 13111. The test
// runs each line with bash after putting the port it started the server on
// in place of 13111, with node_modules/.bin first on PATH so `buf` is the
// binary from the @bufbuild/buf npm package.
//
// Print them: node buf-curl-commands.mjs
import { fileURLToPath } from 'node:url';

export const DEFAULT_PORT = 13111;

/** Lists the server's methods, discovered through server reflection. */
export const LIST_METHODS =
  'buf curl --protocol grpc --http2-prior-knowledge --list-methods http://127.0.0.1:13111';

/** ListChannels as the connected user alice; prints the response as JSON. */
export const LIST_CHANNELS =
  "buf curl --protocol grpc --http2-prior-knowledge -H 'authorization: alice' -d '{}' " +
  'http://127.0.0.1:13111/chat.v1.ChatService/ListChannels';

/** CreateGroupChat as alice, with a JSON request body; prints `{}`. */
export const CREATE_GROUP =
  "buf curl --protocol grpc --http2-prior-knowledge -H 'authorization: alice' -d '{\"name\": \"general\"}' " +
  'http://127.0.0.1:13111/chat.v1.ChatService/CreateGroupChat';

/** The standard health check for the chat service; prints
 * `{"status": "SERVING"}`. Needs no authorization header. */
export const HEALTH_CHECK =
  "buf curl --protocol grpc --http2-prior-knowledge -d '{\"service\": \"chat.v1.ChatService\"}' " +
  'http://127.0.0.1:13111/grpc.health.v1.Health/Check';

/** Every command, by the name the README and the tests use. */
export const COMMANDS = { LIST_METHODS, LIST_CHANNELS, CREATE_GROUP, HEALTH_CHECK };

/** `command` aimed at `port` instead of 13111. */
export function withPort(command, port) {
  return command.replaceAll(`127.0.0.1:${DEFAULT_PORT}`, `127.0.0.1:${port}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const command of Object.values(COMMANDS)) {
    console.log(command);
  }
}
