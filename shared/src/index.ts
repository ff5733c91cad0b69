/**
 * @sv/shared: the snapd-compatible assertion codec, crypto and protocol types
 * used by the vault, the device agent and the dashboard. No I/O and no Node
 * module (test/architecture.test.ts holds it to that): runs unchanged on a
 * Raspberry Pi, in the vault and in a browser. Bytes are Uint8Arrays.
 *
 * Crypto runs on a platform (setCryptoPlatform): @noble/hashes and WebCrypto
 * by default; Node processes import `@sv/shared/node`, which installs
 * node:crypto (the fast path) and holds the Node-only signers, the key
 * generator and the worker starter.
 */
export { ERRORS, VaultError, isVaultError, isErrorCode, toErrorBody, type ErrorCode, type ErrorSpec, type ErrorBody, type VaultErrorOptions } from './errors.js'
export { ERROR_EXIT_CODES, exitCodeFor, type ExitClass } from './exit-codes.js'

// assertion codec
export { Assertion, ASSERTION_TYPES, assertionType, type AssertionTypeInfo, type AssertionParts } from './assertion/assertion.js'
export { parseHeaders, HEADER_NAME_RE, type HeaderValue, type HeaderMap, type Headers } from './assertion/grammar.js'
export { decodeAssertion, decodeStream, decodeStreamPartial, MAX_HEADERS_SIZE, MAX_BODY_SIZE, MAX_SIGNATURE_SIZE, type StreamLimits, type PartialStream } from './assertion/decode.js'
export { signAssertion, encodeStream, formatContent, type HeadersInput, type SignOptions } from './assertion/encode.js'
export { ACCOUNT_ID_RE, MODEL_NAME_RE, ACCOUNT_KEY_NAME_RE, parseRfc3339, formatRfc3339 } from './assertion/checks.js'
export { AccountAssertion } from './assertion/types/account.js'
export { AccountKeyAssertion, AccountKeyRequestAssertion, isValidAt, type Validity } from './assertion/types/account-key.js'
export { ModelAssertion, isValidSnapName, type ModelSnap, type ModelGrade, type StorageSafety } from './assertion/types/model.js'
export { SerialAssertion, SerialRequestAssertion, DeviceSessionRequestAssertion } from './assertion/types/serial.js'
export { SystemUserAssertion } from './assertion/types/system-user.js'
export { TrustDb, goTime, type TrustDbOptions } from './assertion/trustdb.js'

// crypto
export { PublicKey, publicKeyId, V1_FIXED_TIMESTAMP } from './crypto/keys.js'
export { parseSignature, verifySignature, signContent, type ParsedSignature } from './crypto/signature.js'
export { loadPrivateKeyPem, type AssertionSigner, type LoadedPrivateKey } from './crypto/signer.js'
export { decodePem, encodePem, type PemBlock } from './crypto/pem.js'
export { pkcs1ToPkcs8, pkcs8ToPkcs1 } from './crypto/der.js'
export { digest, getCryptoPlatform, setCryptoPlatform, webCryptoPlatform, type CryptoPlatform, type DigestName, type RsaDigestName } from './crypto/platform.js'
export {
  utf8Encode,
  utf8Decode,
  isUtf8,
  base64Encode,
  base64Decode,
  base64urlEncode,
  base64urlDecode,
  hexEncode,
  hexDecode,
  concatBytes,
  bytesEqual,
} from './crypto/bytes.js'

// protocol
export { normaliseSerial, validateSerial, SERIAL_PATTERN, SERIAL_MAX_LENGTH, type SerialInvalidReason } from './protocol/serial-number.js'

export { rejection, DEFAULT_RETRY_AFTER, type Rejection } from './protocol/rejection.js'
export * as AdminWire from './protocol/admin.js'
export { SystemUserRequestSchema, SHA512CRYPT_RE, SNAPD_MIN_ROUNDS, SNAPD_MAX_ROUNDS, MAX_HASH_ROUNDS, MAX_REVISION, passwordProblem, type SystemUserRequest } from './protocol/system-user-request.js'
export { parseRequest, LogEntryWire, LOG_CSV_COLUMNS, STORE_ID_PATTERN, ROLE_IDS, type RoleId, type HeaderValueWire } from './protocol/admin.js'

// configuration layering
export { mergeConfig, setPath, getPath, configFromEnv, validateConfig, redactConfig, type ConfigTree, type EnvVar, type EnvTable } from './config.js'
export { LOG_EVENTS, type LogEvent } from './log-events.js'
export { CANONICAL_ACCOUNT, CANONICAL_ROOT_ACCOUNT_KEY } from './assertion/canonical.js'
export {
  MQTT_PREFIX,
  MQTT_PREFIX_RE,
  MQTT_OPERATIONS,
  MQTT_MAX_PAYLOAD,
  MQTT_CLIENT_ID_RE,
  requestTopic,
  replyTopic,
  replyFilter,
  operationOf,
  parseMqttRequest,
  isAcceptableResponseTopic,
  MqttRequestSchema,
  type MqttOperation,
  type MqttRequest,
  type MqttRequestIdReply,
  type MqttSerialReply,
  type MqttRejectedReply,
} from './protocol/mqtt.js'

// serial-line link (station <-> unit over a UART): frames, the ARQ link, request/response messages
export { crc32 } from './serial-line/crc32.js'
export {
  encodeFrame,
  FrameDecoder,
  FrameType,
  FRAME_MAGIC,
  FRAME_VERSION,
  FRAME_OVERHEAD,
  HEADER_BYTES as FRAME_HEADER_BYTES,
  DEFAULT_MAX_PAYLOAD as SERIAL_LINE_DEFAULT_MAX_PAYLOAD,
  MAX_PAYLOAD_LIMIT as SERIAL_LINE_MAX_PAYLOAD_LIMIT,
  type Frame,
  type DecoderStats,
  type FrameDecoderOptions,
} from './serial-line/frame.js'
export { SerialLineLink, SerialLineError, DEFAULT_MAX_MESSAGE as SERIAL_LINE_DEFAULT_MAX_MESSAGE, type LinkRole, type LinkFailure, type LinkStats, type LinkTimers, type SerialLineLinkOptions } from './serial-line/link.js'
export {
  encodeSerialLineRequest,
  encodeSerialLineResponse,
  decodeSerialLineRequest,
  decodeSerialLineResponse,
  SERIAL_LINE_OPERATIONS,
  type SerialLineOperation,
  type SerialLineRequest,
  type SerialLineResponse,
} from './serial-line/messages.js'
