/**
 * Identity: one Ed25519 key per node, which is at once its `did:key` (`z6Mk…`), its libp2p
 * PeerId, its did-jwt signing key (EdDSA, verified offline by a did:key resolver) and, via
 * the Edwards→Montgomery map, its X25519 key for JWEs. The key lives in a keystore
 * directory (`self.key`, 0600), optionally sealed with a passphrase (scrypt + XChaCha20-Poly1305).
 *
 * @example
 * ```ts
 * import { Keystore, verifyJwt, encryptForDids, peerIdFromDid } from '../identity/index.js'
 *
 * const dir = '/home/me/.shoal/keystore'
 * const me = (await Keystore.exists(dir)) ? await Keystore.load(dir) : await Keystore.init(dir)
 * const jwt = await me.signJwt({ job: 'mnist' }, { expiresIn: 3600 })
 * const { payload, issuer } = await verifyJwt(jwt) // issuer === me.did
 * const jwe = await encryptForDids(new TextEncoder().encode('key'), [me.did])
 * const plain = await me.decryptJwe(jwe)
 * peerIdFromDid(me.did).equals(me.peerId) // true
 * ```
 */
export type { JWE, JWTPayload } from 'did-jwt'
export type { Resolvable, DIDResolutionResult } from './did.js'
export {
  didFromPublicKey,
  publicKeyFromDid,
  peerIdFromDid,
  didFromPeerId,
  didKeyResolver,
  x25519PublicKeyFromEd25519,
  x25519MultibaseFromPublicKey
} from './did.js'
export { generateKeypair, keypairFromSeed, verifySignature, type Ed25519Keypair } from './keys.js'
export { Identity, type SignJwtOptions } from './identity.js'
export { verifyJwt, encryptForDids, type VerifyJwtOptions, type VerifiedJwt } from './jwt.js'
export { Keystore, type KeystoreInitOptions, type ScryptParams } from './keystore.js'
export {
  InvalidDidError,
  InvalidKeyError,
  UnsupportedPeerIdError,
  JwtInvalidError,
  JweError,
  KeystoreError,
  type InvalidDidReason,
  type JwtInvalidReason,
  type JweErrorCode,
  type KeystoreErrorCode
} from './errors.js'
export * as identityConstants from './constants.js'
