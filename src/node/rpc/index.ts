/**
 * JSON-RPC 2.0 server and client for the node's HTTP API.
 *
 * @example
 * ```ts
 * const server = new RpcServer({ methods: [method({ name: 'node_ping', summary: 'ping', params: z.object({}),
 *   result: z.string(), handler: async () => 'pong' })] }, { host: '127.0.0.1', port: 0, token, maxBodyBytes: 1 << 20 })
 * await server.start()
 * ```
 */
export * from './errors.js'
export {
  RpcServer,
  RpcListenError,
  method,
  toRpcError,
  namedFailure,
  RpcTimeoutError,
  RPC_HEADERS_TIMEOUT_MS,
  RPC_BODY_TIMEOUT_MS,
  RPC_STREAM_IDLE_MS,
  type RpcServerInit,
  type RpcServerComponents,
  type RpcGate,
  type RpcMethod,
  type StreamHandler
} from './server.js'
export { RpcClient, RpcCallError, DaemonUnreachableError } from './client.js'
