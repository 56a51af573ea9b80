#!/usr/bin/env node
// The `shoal` command: checks the Node.js version, then runs the TypeScript CLI through tsx.
import './check-node.js'
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/node/cli/main.ts')
await main(process.argv)
