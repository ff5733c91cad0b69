export * from './errors.js'
export { normaliseSerial, validateSerial, SERIAL_PATTERN, SERIAL_MAX_LENGTH, type SerialInvalidReason } from './protocol/serial-number.js'
