export {
  acceptKey,
  decideHandshake,
  originAllowed,
  type Acceptance,
  type HandshakePolicy,
  type HandshakeRequest,
  type OriginPolicy,
  type Refusal,
} from './decide.js';
export { HandshakeRejection, rejection, type Rejection, type RejectionCode } from './rejection.js';
export { acceptResponse, reasonPhrase, rejectionResponse } from './response.js';
export { isToken, isValidKey, listHasToken, singleValue, splitList, type HeaderValue } from './tokens.js';
