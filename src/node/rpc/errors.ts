/** JSON-RPC 2.0 error codes (https://www.jsonrpc.org/specification#error_object). */
export const PARSE_ERROR = -32700
export const INVALID_REQUEST = -32600
export const METHOD_NOT_FOUND = -32601
export const INVALID_PARAMS = -32602
export const INTERNAL_ERROR = -32603
/** Application errors (a ShoalError); `data.code` holds its stable code. */
export const APPLICATION_ERROR = -32000

export interface JsonRpcError {
  code: number
  message: string
  data?: unknown
}
