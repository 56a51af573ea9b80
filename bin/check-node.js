// Refuse to run on a Node.js older than Shoal needs, with a clear message, before
// anything imports helia/libp2p/did-jwt (which crash on Node 20 with obscure errors).
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `shoal: Node.js >= 22.19 is required, but this is ${process.version} (${process.execPath}).\n` +
      `Run Shoal through npm (npm start, npm test, npx shoal): the project's dev dependency "node@22"\n` +
      `puts Node 22 first on the PATH of npm scripts. Or install Node 22 and put it on your PATH.\n`
  )
  process.exit(1)
}
