export type { Authority, CreateAuthorityOptions } from './authority.js';
export {
  authorityExists,
  nameConstraintsOf,
  retireAuthority,
  CA_CERT_FILE,
  CA_KEY_FILE,
  createAuthorityMaterial,
  defaultHome,
  fingerprintOf,
  loadAuthority,
  loadOrCreateAuthority,
  positiveSerialHex,
} from './authority.js';
export type { Leaf } from './leaf-certs.js';
export { LEAF_KEY_FILE } from './leaf-certs.js';
export { LeafFactory, normalizeHost } from './leaf-certs.js';
