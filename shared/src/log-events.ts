/**
 * The log event vocabulary: `msg` of every log line is one of these names
 * (dotted, lower case, the fact in the past tense); data goes in fields.
 * A new event is a reviewed change to this one list.
 */
export const LOG_EVENTS = [
  // vault lifecycle
  'vault.started',
  'vault.stopping',
  'vault.stopped',
  'config.dev_mode',
  'config.warning',
  'store.opened',
  'store.closed',
  'store.purged',
  'signer.worker.failed',
  'signer.worker.exited',
  'tls.self_signed',
  // device API
  'request.completed',
  'request.failed',
  'request_id.issued',
  'serial.signed',
  'serial.reissued',
  'serial.retried',
  'serial.rejected',
  'serial.clone_refused',
  'model.served',
  // admin
  'admin.denied',
  'brand.created',
  'brand.imported',
  'key.generated',
  'key.imported',
  'key.enabled',
  'key.disabled',
  'model.created',
  'model.updated',
  'serial.released',
  'token.created',
  // MQTT
  'mqtt.started',
  'mqtt.client_connected',
  'mqtt.client_refused',
  'mqtt.message_dropped',
  'mqtt.reply_failed',
  // device agent
  'agent.started',
  'serial.detected',
  'device_key.generating',
  'device_key.generated',
  'device_key.loaded',
  'provision.step.started',
  'provision.step.completed',
  'provision.retry',
  'provision.waiting',
  'provision.failed',
  'provision.done',
  'provision.resumed',
  'serial.verified',
  'serial.written',
  'state.reset',
  'agent.stopped',
  'hook.completed',
  'hook.failed',
] as const

export type LogEvent = (typeof LOG_EVENTS)[number]
