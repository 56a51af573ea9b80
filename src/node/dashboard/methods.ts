/** `dashboard_login` and `events_topics`: the RPC side of the dashboard and the event stream. */
import { z } from 'zod'
import { method, type RpcMethod } from '../rpc/index.js'
import { NODE_EVENT_TOPICS } from '../events/index.js'
import type { DashboardGate } from './gate.js'

export function dashboardMethods(gate: Pick<DashboardGate, 'loginUrl'>): RpcMethod[] {
  return [
    method({
      name: 'dashboard_login',
      summary:
        'A one-time login URL for the web dashboard (its token is spent by the first visit and expires in minutes)',
      params: z.object({}),
      result: z.object({ url: z.string(), expiresAt: z.string() }),
      handler: async () => {
        const { url, expiresAt } = gate.loginUrl()
        return { url, expiresAt: new Date(expiresAt).toISOString() }
      }
    }),
    method({
      name: 'events_topics',
      summary:
        'The topics of the live event stream (GET /api/v0/events?topics=a,b — Server-Sent Events, docs/events.md)',
      params: z.object({}),
      result: z.array(z.string()),
      handler: async () => [...NODE_EVENT_TOPICS]
    })
  ]
}
